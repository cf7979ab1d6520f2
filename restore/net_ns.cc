#include "restore/net_ns.h"

#include <fcntl.h>
#include <linux/if.h>
#include <sched.h>
#include <unistd.h>

#include <map>

#include "sys/rtnetlink.h"

namespace cr::restore {

namespace {

Status write_sysctl(const schema::NetSysctl& s) {
  // The name is one of crtools' list (check_net_records): a fixed path below /proc/sys/net,
  // which shows the namespace of the thread that opens it.
  const std::string path = "/proc/sys/net/" + s.name;
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + path);
  const std::string v = s.value + "\n";
  if (::write(fd.get(), v.data(), v.size()) != static_cast<ssize_t>(v.size()))
    return errno_error("write '" + s.value + "' to " + path);
  return {};
}

bool same(const sys::NlAddr& a, const schema::NetAddr& b) {
  return a.family == static_cast<int>(b.family) && a.prefixlen == b.prefixlen &&
         a.address == b.address && (b.local.empty() || a.local == b.local);
}

Status configure(const ProcessImage& shared) {
  for (const schema::NetSysctl& s : shared.net_sysctls)
    CR_TRY_CTX(write_sysctl(s), "net namespace sysctl");
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
    bool kept = false;
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

Result<NetNsScope> NetNsScope::enter_new(const ProcessImage& shared) {
  ScopedFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home.valid()) return errno_error("open crrestore's own net namespace");
  if (::unshare(CLONE_NEWNET) != 0) return errno_error("unshare(CLONE_NEWNET) for the tree");
  NetNsScope scope(std::move(home));
  CR_TRY(configure(shared));  // on failure the scope goes back home
  return scope;
}

Status NetNsScope::leave() {
  if (!home_.valid()) return {};
  const int rc = ::setns(home_.get(), CLONE_NEWNET);
  home_.reset();
  return rc == 0 ? Status{} : errno_error("setns back into crrestore's own net namespace");
}

}  // namespace cr::restore
