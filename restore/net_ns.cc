#include "restore/net_ns.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "sys/proc_parse.h"
#include "sys/rtnetlink.h"

namespace cr::restore {

namespace {

// ping_group_range holds gids as crdump saw them (outside the tree's user namespace): the
// kernel takes them in the writer's. An empty range (low above high: nobody, a new
// namespace's own) stays as the new namespace has it (its "1 0" has no gid 1 inside).
Result<std::optional<std::string>> gid_range(const std::string& value,
                                             const std::optional<schema::UserNs>& user_ns) {
  unsigned long low = 0, high = 0;
  if (std::sscanf(value.c_str(), "%lu %lu", &low, &high) != 2)
    return make_error("ping_group_range '" + value + "' is not two gids");
  if (low > high) return std::optional<std::string>{};
  if (!user_ns) return std::optional<std::string>{value};
  const sys::IdMap gids{user_ns->gid_map};
  const uint32_t in_low = gids.inside(static_cast<uint32_t>(low));
  const uint32_t in_high = gids.inside(static_cast<uint32_t>(high));
  if (in_low == sys::IdMap::kUnmapped || in_high == sys::IdMap::kUnmapped || in_high < in_low ||
      in_high - in_low != high - low)
    return make_error("ping_group_range '" + value +
                      "' is not a range of gids the tree's user namespace maps");
  return std::optional<std::string>{std::to_string(in_low) + "\t" + std::to_string(in_high)};
}

Status write_sysctl(const schema::NetSysctl& s, const std::optional<schema::UserNs>& user_ns) {
  // The name is one of crtools' list (check_net_records): a fixed path below /proc/sys/net,
  // which shows the namespace of the thread that opens it.
  const std::string path = "/proc/sys/net/" + s.name;
  std::string value = s.value;
  if (s.name == "ipv4/ping_group_range") {
    CR_TRY_ASSIGN(std::optional<std::string> v, gid_range(s.value, user_ns));
    if (!v) return {};
    value = *v;
  }
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + path);
  const std::string v = value + "\n";
  if (::write(fd.get(), v.data(), v.size()) != static_cast<ssize_t>(v.size()))
    return errno_error("write '" + s.value + "' to " + path);
  return {};
}

bool same(const sys::NlAddr& a, const schema::NetAddr& b) {
  return a.family == static_cast<int>(b.family) && a.prefixlen == b.prefixlen &&
         a.address == b.address && (b.local.empty() || a.local == b.local);
}

const sys::NlLink* find_link(const std::vector<sys::NlLink>& links, const std::string& name) {
  for (const sys::NlLink& l : links)
    if (l.name == name) return &l;
  return nullptr;
}

// The outside end's name is taken in crrestore's namespace. By the veth of the dumped tree's
// namespace, most likely: that namespace, its last process just killed by crdump, is destroyed
// by the kernel's cleanup a moment later, and its veths with it. Wait for that, bounded.
Status wait_name_free(sys::Rtnl& home, const std::string& inside, const std::string& name) {
  for (int tries = 0;; ++tries) {
    CR_TRY_ASSIGN(std::vector<sys::NlLink> links, home.links());
    const sys::NlLink* l = find_link(links, name);
    if (l == nullptr) return {};
    if (l->kind != "veth" || tries == 500)
      return make_error("net namespace: veth '" + inside + "': its outside end '" + name +
                        "' is a link of crrestore's net namespace already" +
                        (l->kind == "veth" ? " (and stayed 5 s)" : "") +
                        "; give it another name with --external veth[" + inside + "]:NAME");
    ::usleep(10 * 1000);
  }
}

// Each veth of the image: a pair inside made once, an outside end made in crrestore's namespace
// (`home`), a port of its bridge, and up (the inside end is set up with the other links).
Status make_veths(const ProcessImage& shared, const std::map<std::string, ExternalVeth>& external,
                  sys::Rtnl& nl, sys::Rtnl& home, int home_ns) {
  std::set<std::string> made;
  for (const schema::NetLink& l : shared.net_links) {
    if (l.kind != schema::kNetLinkVeth || made.count(l.name) != 0) continue;
    const schema::NetLink* inside = nullptr;
    for (const schema::NetLink& p : shared.net_links)
      if (p.name == l.peer) inside = &p;
    const std::string what = "net namespace: veth '" + l.name + "'";
    if (inside != nullptr) {
      CR_TRY_CTX(nl.add_veth(l.name, l.address, l.mtu, l.peer, inside->address, -1), what);
      made.insert(l.peer);
      continue;
    }
    ExternalVeth out{l.peer, l.peer_master};
    if (auto e = external.find(l.name); e != external.end()) out = e->second;
    if (out.name.empty())
      return make_error(what +
                        ": crdump saw no name for its other end (in a namespace neither "
                        "the tree's nor crdump's): give one with --external veth[" +
                        l.name + "]:NAME[@BRIDGE]");
    CR_TRY(wait_name_free(home, l.name, out.name));
    CR_TRY_ASSIGN(std::vector<sys::NlLink> before, home.links());
    int master = 0;
    if (!out.bridge.empty()) {
      const sys::NlLink* b = find_link(before, out.bridge);
      if (b == nullptr)
        return make_error(what + ": no bridge '" + out.bridge +
                          "' in crrestore's net namespace for its outside end");
      master = b->ifindex;
    }
    CR_TRY_CTX(nl.add_veth(l.name, l.address, l.mtu, out.name, {}, home_ns), what);
    CR_TRY_ASSIGN(std::vector<sys::NlLink> links, home.links());
    const sys::NlLink* end = find_link(links, out.name);
    if (end == nullptr) return make_error(what + ": its outside end '" + out.name + "' is gone");
    CR_TRY_CTX(home.set_master_up(end->ifindex, master),
               what + ": outside end '" + out.name + "'" +
                   (out.bridge.empty() ? "" : " as a port of '" + out.bridge + "'"));
  }
  return {};
}

Status configure(const ProcessImage& shared) {
  for (const schema::NetSysctl& s : shared.net_sysctls)
    CR_TRY_CTX(write_sysctl(s, shared.user_ns), "net namespace sysctl");
  CR_TRY_ASSIGN(sys::Rtnl nl, sys::Rtnl::open());
  CR_TRY_ASSIGN(std::vector<sys::NlLink> links, nl.links());
  std::map<uint32_t, int> ifindex;  // dumped -> here
  for (const schema::NetLink& l : shared.net_links) {
    int here = 0;
    for (const sys::NlLink& h : links)
      if (h.name == l.name) here = h.ifindex;
    if (here == 0) return make_error("net namespace: no link '" + l.name + "' in a new one");
    ifindex[l.ifindex] = here;
    CR_TRY_CTX(nl.set_link(here, (l.flags & IFF_UP) != 0, l.mtu), "net namespace: link " + l.name);
  }
  // lo up has added 127.0.0.1/8 and ::1: what the image lacks goes, what it has is added.
  CR_TRY_ASSIGN(std::vector<sys::NlAddr> now, nl.addrs());
  for (const sys::NlAddr& a : now) {
    // A veth's link-local address the kernel made from its MAC (as crdump left it out).
    bool kept = a.family == AF_INET6 && a.proto == IFAPROT_KERNEL_LL;
    for (const schema::NetAddr& b : shared.net_addrs)
      kept = kept || (ifindex.at(b.ifindex) == a.ifindex && same(a, b));
    if (!kept) CR_TRY_CTX(nl.del_addr(a), "net namespace: remove an address the image lacks");
  }
  for (const schema::NetAddr& b : shared.net_addrs) {
    sys::NlAddr a;
    a.ifindex = ifindex.at(b.ifindex);
    a.family = static_cast<int>(b.family);
    a.prefixlen = b.prefixlen;
    a.flags = b.flags;
    a.scope = b.scope;
    a.address = b.address;
    a.local = b.local;
    CR_TRY_CTX(nl.add_addr(a), "net namespace: address of link " + std::to_string(b.ifindex));
  }
  for (const schema::NetRoute& r : shared.net_routes) {
    sys::NlRoute o;
    o.family = static_cast<int>(r.family);
    o.dst_len = r.dst_len;
    o.table = 254;  // RT_TABLE_MAIN: the only one kept
    o.type = r.type;
    o.scope = r.scope;
    o.protocol = r.protocol;
    o.oif = r.oif == 0 ? 0 : ifindex.at(r.oif);
    o.priority = r.priority;
    o.dst = r.dst;
    o.gateway = r.gateway;
    o.prefsrc = r.prefsrc;
    o.metrics = r.metrics;
    CR_TRY_CTX(nl.add_route(o),
               "net namespace: route of " + std::to_string(r.dst_len) + "-bit prefix");
  }
  return {};
}

}  // namespace

Status check_external_veths(const ProcessImage& shared,
                            const std::map<std::string, ExternalVeth>& external) {
  for (const auto& [inside, out] : external) {
    const schema::NetLink* l = nullptr;
    for (const schema::NetLink& k : shared.net_links)
      if (k.kind == schema::kNetLinkVeth && k.name == inside) l = &k;
    bool pair = false;
    for (const schema::NetLink& k : shared.net_links)
      pair = pair || (l != nullptr && k.name == l->peer);
    if (l == nullptr || pair)
      return make_error("--external veth[" + inside + "]: the tree's net namespace has no veth '" +
                        inside + "' with its other end outside");
  }
  return {};
}

Result<NetNsScope> NetNsScope::enter_new(const ProcessImage& shared,
                                         const std::map<std::string, ExternalVeth>& external) {
  ScopedFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home.valid()) return errno_error("open crrestore's own net namespace");
  CR_TRY_ASSIGN(sys::Rtnl home_nl, sys::Rtnl::open());  // stays crrestore's namespace's
  if (::unshare(CLONE_NEWNET) != 0) return errno_error("unshare(CLONE_NEWNET) for the tree");
  const int home_ns = home.get();
  NetNsScope scope(std::move(home));
  {
    CR_TRY_ASSIGN(sys::Rtnl nl, sys::Rtnl::open());
    CR_TRY(make_veths(shared, external, nl, home_nl, home_ns));
  }
  CR_TRY(configure(shared));  // on failure the scope goes back home (the veths go with it)
  return scope;
}

Status NetNsScope::leave() {
  if (!home_.valid()) return {};
  const int rc = ::setns(home_.get(), CLONE_NEWNET);
  home_.reset();
  return rc == 0 ? Status{} : errno_error("setns back into crrestore's own net namespace");
}

}  // namespace cr::restore
