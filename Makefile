# The two commands: `make run` and `make test`. Both install what is missing first, each
# its own profile of scripts/install-deps.sh: `run` what building and running the binary
# needs, `test` that and the test tools (GoogleTest, Node.js, Chromium, nginx, Redis, clang
# with libFuzzer...). Other targets: build (the release binary, tests off), package (the
# Debian package, build/release/herald_<version>_<arch>.deb; docs/deployment.md), bench
# (QUICK=1 for the short one; the bench profile), bench-1m, fuzz (FUZZ_SECONDS per target), soak,
# format, clean.
# `make soak` (never part of `make test`): mixed load on the release binary for SOAK_MINUTES
# (60) on SOAK_STORE (sqlite, cluster or both, one after the other); it checks that nothing
# acknowledged is lost and that RSS and open files come back to their baseline. Knobs and
# verdicts: tests/soak/README.md.

JOBS ?= $(shell nproc)
PORT ?= 8080
# `make run` keeps its history in an embedded SQLite file; STORE=memory keeps none.
STORE ?= sqlite:./data/herald.db
CTEST = ctest --output-on-failure -j $(JOBS)

QUICK ?= 0
# Seconds of fuzzing per target: in `make test` (after its corpus is replayed), in `make fuzz`.
FUZZ_TEST_SECONDS ?= 15
FUZZ_SECONDS ?= 600

.PHONY: deps deps-run deps-package build run package test test-dev test-asan test-tsan \
	test-fuzz fuzz bench bench-1m soak format clean

deps:
	@bash scripts/install-deps.sh test

deps-run:
	@bash scripts/install-deps.sh run

deps-package:
	@bash scripts/install-deps.sh package

# The release preset builds with HERALD_TESTS=OFF: no test targets, no GoogleTest needed.
build: deps-run
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target herald

run: build
	./build/release/herald serve --port $(PORT) --store $(STORE)

# The .deb of the release build, with herald(1), the service's config and unit.
package: deps-package
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target package

# Unit and integration tests on a debug build, then the same under ASan+UBSan, then the
# threaded core's suites under TSan, then each fuzz target briefly over its corpus. The
# package is built first: integration/package installs it (as root) and purges it; it runs
# in the debug tree's pass only.
test: deps package test-dev test-asan test-tsan test-fuzz

test-dev:
	cmake --preset dev >/dev/null
	cmake --build --preset dev -j $(JOBS)
	cd build/dev && $(CTEST)

test-asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $(CTEST) -LE package

test-tsan:
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS) --target herald unit_hub unit_store unit_auth
	cd build/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $(CTEST) -L threaded

# The libFuzzer targets (clang, ASan+UBSan; tests/fuzz): each replays its committed corpus
# (tests/fuzz/corpus/NAME) and what earlier runs found (build/fuzz/fuzz-work/corpus/NAME),
# then fuzzes; new inputs go to the work corpus, crashes to build/fuzz/fuzz-work/artifacts.
# Prints executions, exec/s and coverage per target.
test-fuzz:
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS)
	rm -f build/fuzz/fuzz-work/stats/*.txt
	cd build/fuzz && FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) $(CTEST) -L fuzz --timeout 600
	@cat build/fuzz/fuzz-work/stats/*.txt

fuzz: deps
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS)
	rm -f build/fuzz/fuzz-work/stats/*.txt
	cd build/fuzz && FUZZ_SECONDS=$(FUZZ_SECONDS) $(CTEST) -L fuzz --timeout $$(($(FUZZ_SECONDS) + 600))
	@cat build/fuzz/fuzz-work/stats/*.txt

# herald against nginx+Nchan and Pushpin (installed from Debian's packages), scenario by
# scenario; writes docs/benchmarks.md, docs/benchmarks.svg and the table in README.md.
bench: build
	@bash scripts/install-deps.sh bench
	QUICK=$(QUICK) bash bench/run.sh

# One million subscribers, for a machine without a 20,000-file cap: see docs/one-million.md.
bench-1m: build
	bash bench/run-1m.sh

SOAK_MINUTES ?= 60
SOAK_STORE ?= sqlite

soak: deps build
	@case "$(SOAK_STORE)" in sqlite|cluster|both) ;; \
	  *) echo "SOAK_STORE must be sqlite, cluster or both, not '$(SOAK_STORE)'" >&2; exit 2;; esac
	@set -e; for store in $(if $(filter both,$(SOAK_STORE)),sqlite cluster,$(SOAK_STORE)); do \
	  SOAK_MINUTES=$(SOAK_MINUTES) node tests/soak/soak.mjs $$store; done

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf build
