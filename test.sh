#!/usr/bin/env bash
# Builds crtools and runs every test: unit + end-to-end (RelWithDebInfo), the unit tests again under
# ASan+UBSan, and the stream reader's fuzzer for a bounded time. Installs missing packages first.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
cr_deps
jobs=$(nproc)
fuzz_seconds=${CR_FUZZ_SECONDS:-60}
# crrestore's image reading: a bounded run here, longer on demand (CR_RESTORE_FUZZ_SECONDS=3600).
restore_fuzz_seconds=${CR_RESTORE_FUZZ_SECONDS:-20}

echo "== build (RelWithDebInfo) (at ${SECONDS}s)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCR_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

echo "== tests (at ${SECONDS}s)"
ctest --test-dir build --output-on-failure -j2 | tee build/ctest.log
main_line=$(grep -E 'tests passed, [0-9]+ tests failed out of' build/ctest.log | tail -1)

echo "== unit tests under ASan+UBSan (at ${SECONDS}s)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCR_WERROR=ON -DCR_SANITIZE=ON -DCR_BENCH=OFF >/dev/null
asan_targets=$(cmake --build build-asan --target help | awk '/_test$/ && !/e2e_test/ {print $2}' | sed 's/^\.\.\. //;s/:.*//' | tr '\n' ' ')
# shellcheck disable=SC2086
cmake --build build-asan -j"$jobs" --target $asan_targets
ctest --test-dir build-asan --output-on-failure -j2 -E 'E2e|e2e|Zdtm|zdtm' | tee build-asan/ctest.log
asan_line=$(grep -E 'tests passed, [0-9]+ tests failed out of' build-asan/ctest.log | tail -1)

echo "== fuzzing the stream reader for ${fuzz_seconds}s (at ${SECONDS}s)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCR_FUZZ=ON -DCR_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$jobs" --target reader_fuzzer restore_image_fuzzer
mkdir -p build-fuzz/corpus
cp test/fuzz/corpus/* build-fuzz/corpus/
# Real dumps seed it too (the fixture images of every frozen version).
for f in test/fixtures/v*/*.img.zst; do cp "$f" "build-fuzz/corpus/fixture-$(basename "$(dirname "$f")")-$(basename "$f")"; done
build-fuzz/test/fuzz/reader_fuzzer -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
  build-fuzz/corpus 2>build-fuzz/fuzz.log || { tail -40 build-fuzz/fuzz.log; echo "fuzzer found a crash"; exit 1; }
tail -2 build-fuzz/fuzz.log
echo "== fuzzing crrestore's image reading for ${restore_fuzz_seconds}s (at ${SECONDS}s)"
mkdir -p build-fuzz/restore-corpus
cp build-fuzz/corpus/* build-fuzz/restore-corpus/
build-fuzz/test/fuzz/restore_image_fuzzer -max_total_time="$restore_fuzz_seconds" -rss_limit_mb=2048 \
  build-fuzz/restore-corpus 2>build-fuzz/restore-fuzz.log || { tail -40 build-fuzz/restore-fuzz.log; echo "fuzzer found a crash"; exit 1; }
tail -2 build-fuzz/restore-fuzz.log

count() { echo "$1" | sed -E 's/.*failed out of ([0-9]+).*/\1/'; }
failed() { echo "$1" | sed -E 's/.* ([0-9]+) tests failed.*/\1/'; }
total=$(( $(count "$main_line") + $(count "$asan_line") + 2 ))
nfail=$(( $(failed "$main_line") + $(failed "$asan_line") ))
echo "$main_line (RelWithDebInfo)"
echo "$asan_line (ASan+UBSan)"
echo "$((total - nfail)) passed, $nfail failed (in ${SECONDS}s)"
[ "$nfail" -eq 0 ]
