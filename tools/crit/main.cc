// crit: the image stream's inspector. See crit.h.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "tools/crit/crit.h"

int main(int argc, char** argv) {
  CLI::App app{"crit: show, check, decode and encode crtools image streams (plain or zstd)", "crit"};
  app.set_version_flag("--version", std::string("crit ") + CR_TOOL_VERSION);
  app.require_subcommand(1);

  std::string img = "-";
  const char* kImgHelp = "image file, or - for stdin (plain or zstd, detected)";

  bool no_verify = false;
  const char* kNoVerifyHelp =
      "do not check checksums (streams written without them, or to look past a damaged byte)";

  auto* show = app.add_subcommand("show", "one line per record, then totals");
  show->add_option("IMG", img, kImgHelp);
  show->add_flag("--no-verify", no_verify, kNoVerifyHelp);

  auto* info =
      app.add_subcommand("info", "stream header, format version, counts and bytes per type");
  info->add_option("IMG", img, kImgHelp);
  info->add_flag("--no-verify", no_verify, kNoVerifyHelp);

  auto* check = app.add_subcommand("check", "verify checksums, objrefs and the trailer");
  check->add_option("IMG", img, kImgHelp);
  std::string verify_key;
  check->add_option("--verify-key", verify_key,
                    "also require a signature (crdump --sign-key) made with the key in FILE");

  bool pages = false;
  auto* decode = app.add_subcommand("decode", "image to JSON on stdout");
  decode->add_option("IMG", img, kImgHelp);
  decode->add_flag("--pages", pages, "include tails (page contents, pipe and file data) as hex");

  std::string json_in = "-", out = "-";
  auto* encode = app.add_subcommand(
      "encode", "JSON (from decode --pages) back to an uncompressed image, byte-identical");
  encode->add_option("JSON", json_in, "JSON file, or - for stdin");
  encode->add_option("-o,--output", out, "output image (default stdout, never a terminal)");

  std::string view;
  auto* x = app.add_subcommand("x", "views across records: ps, fds, mems");
  x->add_option("VIEW", view, "ps: processes; fds: fd tables; mems: address spaces")
      ->required()
      ->check(CLI::IsMember({"ps", "fds", "mems"}));
  x->add_option("IMG", img, kImgHelp)->required();
  x->add_flag("--no-verify", no_verify, kNoVerifyHelp);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Usage errors follow the one-line rule too.
    std::fprintf(stderr, "crit: %s (see crit --help)\n", e.what());
    return 1;
  }

  try {
    if (*show) return cr::crit::cmd_show(img, !no_verify);
    if (*info) return cr::crit::cmd_info(img, !no_verify);
    if (*check) return cr::crit::cmd_check(img, verify_key);
    if (*decode) return cr::crit::cmd_decode(img, pages);
    if (*encode) return cr::crit::cmd_encode(json_in, out);
    if (*x) return cr::crit::cmd_x(view, img, !no_verify);
  } catch (const cr::crit::Failure& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "crit: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "crit: %s\n", e.what());
    return 1;
  }
  return 1;
}
