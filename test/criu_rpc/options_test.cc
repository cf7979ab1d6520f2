// CRIU RPC options as runc sends them, mapped to crtools' dump and restore options; what crcriu
// cannot honour refused by name.
#include "criu_rpc/options.h"

#include <gtest/gtest.h>

namespace {

using cr::criu_rpc::dump_plan;
using cr::criu_rpc::restore_plan;

// What runc 1.1 sends for `runc checkpoint` (libcontainer's Checkpoint) of a default container.
crcriu::Opts runc_dump_opts() {
  crcriu::Opts o;
  o.set_images_dir_fd(7);
  o.set_log_level(4);
  o.set_log_file("dump.log");
  o.set_root("/var/lib/bundle/rootfs");
  o.set_manage_cgroups(true);
  o.set_notify_scripts(true);
  o.set_pid(4242);
  o.set_shell_job(false);
  o.set_leave_running(false);
  o.set_tcp_established(false);
  o.set_ext_unix_sk(false);
  o.set_file_locks(false);
  o.set_empty_ns(0x40000000);  // CLONE_NEWNET: runc always sets it
  o.set_orphan_pts_master(true);
  o.set_auto_dedup(false);
  o.set_lazy_pages(false);
  o.set_work_dir_fd(8);
  o.set_freeze_cgroup("/sys/fs/cgroup/freezer/ct1");
  auto* m = o.add_ext_mnt();
  m->set_key("/sys/fs/cgroup/cpu");
  m->set_val("/sys/fs/cgroup/cpu");
  auto* n = o.add_ext_mnt();
  n->set_key("/proc/keys");
  n->set_val("/dev/null");
  return o;
}

// What runc 1.1 sends for `runc restore` (libcontainer's Restore).
crcriu::Opts runc_restore_opts() {
  crcriu::Opts o;
  o.set_images_dir_fd(7);
  o.set_evasive_devices(true);
  o.set_log_level(4);
  o.set_log_file("restore.log");
  o.set_rst_sibling(true);
  o.set_root("/run/runc/ct1/criu-root");
  o.set_manage_cgroups(true);
  o.set_notify_scripts(true);
  o.set_shell_job(false);
  o.set_ext_unix_sk(false);
  o.set_tcp_established(false);
  o.set_file_locks(false);
  o.set_empty_ns(0x40000000);
  o.set_orphan_pts_master(true);
  o.set_auto_dedup(false);
  o.set_lazy_pages(false);
  auto* m = o.add_ext_mnt();
  m->set_key("/dev/null");
  m->set_val("/dev/null");
  auto* b = o.add_ext_mnt();
  b->set_key("/out");
  b->set_val("/srv/out");
  auto* c = o.add_cg_root();
  c->set_ctrl("cpu");
  c->set_path("/ct1");
  auto* f = o.add_inherit_fd();
  f->set_key("pipe:[12345]");
  f->set_fd(1);
  return o;
}

TEST(CriuRpcOptions, RuncCheckpointMapsToADump) {
  crcriu::Opts o = runc_dump_opts();
  auto plan = dump_plan(o);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->pid, 4242);
  EXPECT_FALSE(plan->opts.leave_running);
  EXPECT_FALSE(plan->opts.tcp_established);
  // CRIU's default ghost limit, 1 MiB, when the caller sends none.
  EXPECT_EQ(plan->opts.ghost_limit, 1u << 20);

  o.set_leave_running(true);
  o.set_tcp_established(true);
  o.set_ext_unix_sk(true);
  o.set_shell_job(true);
  o.set_tcp_skip_in_flight(true);
  o.set_ghost_limit(4096);
  plan = dump_plan(o);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan->opts.leave_running);
  EXPECT_TRUE(plan->opts.tcp_established);
  EXPECT_TRUE(plan->opts.ext_unix_sk);
  EXPECT_TRUE(plan->opts.shell_job);
  EXPECT_TRUE(plan->opts.skip_in_flight);
  EXPECT_EQ(plan->opts.ghost_limit, 4096u);
}

TEST(CriuRpcOptions, RuncRestoreMapsToARestore) {
  auto plan = restore_plan(runc_restore_opts());
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan->opts.detach);
  // runc put crcriu in the container's cgroups (cg_root names them): the tree stays there.
  EXPECT_TRUE(plan->opts.ignore_cgroups);
  EXPECT_TRUE(plan->opts.cgroups_as_one);
  EXPECT_EQ(plan->opts.inherit_fds.at("pipe:[12345]"), 1);
  // KEY:KEY (runc's devices, masked paths, cgroup hierarchies) means as dumped: the image's
  // own source stands; another path replaces it.
  EXPECT_EQ(plan->ext_mounts.count("/dev/null"), 0u);
  EXPECT_EQ(plan->ext_mounts.at("/out"), "/srv/out");

  crcriu::Opts o = runc_restore_opts();
  o.clear_cg_root();
  o.set_tcp_close(true);
  auto* v = o.add_veths();
  v->set_if_in("eth0");
  v->set_if_out("veth-ct1");
  o.add_external("veth[eth1]:veth-x@br0");
  o.add_external("mnt[/data]:/srv/data");
  plan = restore_plan(o);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_FALSE(plan->opts.ignore_cgroups);
  EXPECT_TRUE(plan->opts.tcp_close);
  EXPECT_EQ(plan->opts.external_veths.at("eth0").name, "veth-ct1");
  EXPECT_EQ(plan->opts.external_veths.at("eth1").bridge, "br0");
  EXPECT_EQ(plan->ext_mounts.at("/data"), "/srv/data");
}

TEST(CriuRpcOptions, WhatCannotBeHonouredIsRefusedByName) {
  struct Case {
    const char* name;
    void (*set)(crcriu::Opts&);
  };
  const Case cases[] = {
      {"lazy_pages", [](crcriu::Opts& o) { o.set_lazy_pages(true); }},
      {"page server", [](crcriu::Opts& o) { o.mutable_ps()->set_port(1234); }},
      {"parent_img", [](crcriu::Opts& o) { o.set_parent_img("../pre1"); }},
      {"track_mem", [](crcriu::Opts& o) { o.set_track_mem(true); }},
      {"empty_ns", [](crcriu::Opts& o) { o.set_empty_ns(0x40000000 | 0x20000); }},
      {"join_ns", [](crcriu::Opts& o) {
         auto* j = o.add_join_ns();
         j->set_ns("net");
         j->set_ns_file("/var/run/netns/x");
       }},
      {"external net[4026531992]:extRootNetNS",
       [](crcriu::Opts& o) { o.add_external("net[4026531992]:extRootNetNS"); }},
      {"manage_cgroups_mode CG_FULL",
       [](crcriu::Opts& o) { o.set_manage_cgroups_mode(crcriu::CG_FULL); }},
      {"exec_cmd", [](crcriu::Opts& o) { o.add_exec_cmd("/bin/true"); }},
      {"lsm_profile", [](crcriu::Opts& o) { o.set_lsm_profile("apparmor:foo"); }},
      {"tls", [](crcriu::Opts& o) { o.set_tls(true); }},
      {"skip_mnt", [](crcriu::Opts& o) { o.add_skip_mnt("/x"); }},
      {"leave_stopped", [](crcriu::Opts& o) { o.set_leave_stopped(true); }},
  };
  for (const Case& c : cases) {
    crcriu::Opts d = runc_dump_opts();
    c.set(d);
    auto plan = dump_plan(d);
    ASSERT_FALSE(plan.ok()) << c.name;
    EXPECT_NE(plan.error().message.find(c.name), std::string::npos) << plan.error().message;
    EXPECT_NE(plan.error().message.find("not supported by crcriu"), std::string::npos);
    EXPECT_EQ(plan.error().code, EOPNOTSUPP);
    crcriu::Opts r = runc_restore_opts();
    c.set(r);
    EXPECT_FALSE(restore_plan(r).ok()) << c.name;
  }
}

TEST(CriuRpcOptions, DumpOptionsOnARestoreAndTheOtherWayAreMistakes) {
  crcriu::Opts d = runc_dump_opts();
  d.clear_pid();
  auto no_pid = dump_plan(d);
  ASSERT_FALSE(no_pid.ok());
  EXPECT_NE(no_pid.error().message.find("without pid"), std::string::npos);
  d = runc_dump_opts();
  d.set_tcp_close(true);
  EXPECT_FALSE(dump_plan(d).ok());
  crcriu::Opts r = runc_restore_opts();
  r.set_leave_running(true);
  EXPECT_FALSE(restore_plan(r).ok());
  r = runc_restore_opts();
  auto* m = r.add_ext_mnt();
  m->set_key("relative");
  m->set_val("/x");
  EXPECT_FALSE(restore_plan(r).ok());
  r = runc_restore_opts();
  auto* f = r.add_inherit_fd();
  f->set_key("pipe:[12345]");
  f->set_fd(2);
  EXPECT_FALSE(restore_plan(r).ok()) << "the same key twice";
}

TEST(CriuRpcOptions, UnknownFieldsAreRefusedWithTheirNumber) {
  crcriu::Request req;
  req.set_type(crcriu::DUMP);
  *req.mutable_opts() = runc_dump_opts();
  EXPECT_TRUE(cr::criu_rpc::check_known_fields(req).ok());
  std::string bytes;
  ASSERT_TRUE(req.SerializeToString(&bytes));
  // A newer caller's request field 99 (varint 1), and one inside opts, field 200.
  bytes += std::string("\x98\x06\x01", 3);
  crcriu::Request parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  auto st = cr::criu_rpc::check_known_fields(parsed);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("request field 99 unknown"), std::string::npos)
      << st.error().message;

  crcriu::Opts opts = runc_dump_opts();
  std::string ob;
  ASSERT_TRUE(opts.SerializeToString(&ob));
  ob += std::string("\xc0\x0c\x01", 3);  // field 200, varint 1
  crcriu::Request nested;
  nested.set_type(crcriu::DUMP);
  ASSERT_TRUE(nested.mutable_opts()->ParseFromString(ob));
  st = cr::criu_rpc::check_known_fields(nested);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("opts.200"), std::string::npos) << st.error().message;
}

TEST(CriuRpcOptions, NoOptionalFeatureIsOffered) {
  const crcriu::Features f = cr::criu_rpc::supported_features();
  EXPECT_TRUE(f.has_mem_track() && !f.mem_track());
  EXPECT_TRUE(f.has_lazy_pages() && !f.lazy_pages());
  EXPECT_TRUE(f.has_pidfd_store() && !f.pidfd_store());
}

}  // namespace
