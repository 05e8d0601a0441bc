# The two commands: `make run` and `make test`. Both install what is missing first.
# Other targets: build, bench (QUICK=1 for the short one), bench-1m, soak, format, clean.
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

.PHONY: deps build run test test-dev test-asan test-tsan bench bench-1m soak format clean

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target herald

run: build
	./build/release/herald serve --port $(PORT) --store $(STORE)

# Unit and integration tests on a debug build, then the same under ASan+UBSan, then the
# threaded core's suites under TSan.
test: deps test-dev test-asan test-tsan

test-dev:
	cmake --preset dev >/dev/null
	cmake --build --preset dev -j $(JOBS)
	cd build/dev && $(CTEST)

test-asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $(CTEST)

test-tsan:
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS) --target herald unit_hub unit_store unit_auth
	cd build/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $(CTEST) -L threaded

# herald against nginx+Nchan and Pushpin (installed from Debian's packages), scenario by
# scenario; writes docs/benchmarks.md, docs/benchmarks.svg and the table in README.md.
bench: build
	@bash scripts/install-deps.sh --bench
	QUICK=$(QUICK) bash bench/run.sh

# One million subscribers, for a machine without a 20,000-file cap: see docs/one-million.md.
bench-1m: build
	bash bench/run-1m.sh

SOAK_MINUTES ?= 60
SOAK_STORE ?= sqlite

soak: build
	@case "$(SOAK_STORE)" in sqlite|cluster|both) ;; \
	  *) echo "SOAK_STORE must be sqlite, cluster or both, not '$(SOAK_STORE)'" >&2; exit 2;; esac
	@set -e; for store in $(if $(filter both,$(SOAK_STORE)),sqlite cluster,$(SOAK_STORE)); do \
	  SOAK_MINUTES=$(SOAK_MINUTES) node tests/soak/soak.mjs $$store; done

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf build
