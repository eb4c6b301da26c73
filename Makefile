# shopstream build.  `make` builds bin/shopstream; `make test` runs every test;
# `make deps` installs what a fresh Debian 12 machine lacks.  See README.md.

CC       ?= cc
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc -MMD -MP
LDLIBS   := -lrdkafka -lmicrohttpd -lraft -luv -lz -lsnappy -llz4 -lzstd -lpthread -lm
ifdef SANITIZE
# GCC reports false array-bounds warnings on sanitized, inlined code
CFLAGS   += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer -Wno-array-bounds -Wno-stringop-overflow
LDFLAGS  += -fsanitize=$(SANITIZE)
BUILD    := build/san
BIN      := bin/san
else
BUILD    := build/rel
BIN      := bin
endif
# the tests run these binaries (tests/run.sh and the suites read the variables)
export SHOPSTREAM_BIN := $(CURDIR)/$(BIN)/shopstream
export SHOPSTREAM_UNIT_TESTS := $(CURDIR)/$(BIN)/unit_tests

LIB_SRC  := $(filter-out src/cli/main.c,$(wildcard src/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/src/cli/main.o
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o)
# the dashboard's files, compiled in (tools/embed.c)
ASSETS   := $(sort $(wildcard src/serve/assets/*))
ASSET_OBJ := $(BUILD)/gen/assets.o
TOOLS    := bin/kbench bin/mockbroker bin/test_rdkafka_roundtrip

.PHONY: all deps check-deps test test-unit test-wire test-clients test-long demo gen fuzz bench bench-json bench-retail clean format

all: check-deps $(BIN)/shopstream

check-deps:
	@./tools/check-deps.sh build || $(MAKE) --no-print-directory deps

deps:
	./tools/deps.sh

$(BIN)/shopstream: $(MAIN_OBJ) $(LIB_OBJ) $(ASSET_OBJ)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/unit_tests: $(UNIT_OBJ) $(LIB_OBJ) $(ASSET_OBJ)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bin/kbench: ../shared/tools/kbench.c
	@mkdir -p bin
	$(CC) -O2 -o $@ $< -lrdkafka

bin/mockbroker: ../shared/tools/mockbroker.c
	@mkdir -p bin
	$(CC) -O2 -o $@ $< -lrdkafka

bin/test_rdkafka_roundtrip: tests/clients/rdkafka_roundtrip.c
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $< -lrdkafka

build/embed: tools/embed.c
	@mkdir -p build
	$(CC) -O2 -Wall -o $@ $<

build/gen/assets.c: build/embed $(ASSETS)
	@mkdir -p build/gen
	./build/embed $@ $(ASSETS)

$(ASSET_OBJ): build/gen/assets.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

# The protocol codecs are generated from Kafka's JSON specs and committed.
gen:
	python3 tools/gen_protocol.py ../shared/kafka-protocol/message src/protocol

test: check-test-deps $(BIN)/shopstream $(BIN)/unit_tests bin/test_rdkafka_roundtrip bin/mockbroker
	./tests/run.sh

check-test-deps:
	@./tools/check-deps.sh test || $(MAKE) --no-print-directory deps

test-unit: $(BIN)/unit_tests
	$(BIN)/unit_tests

test-wire: $(BIN)/shopstream
	/usr/bin/python3 tests/wire/run_wire.py

test-clients: $(BIN)/shopstream bin/test_rdkafka_roundtrip
	./tests/clients/run.sh

# Fault and soak runs too long for `make test` (tests/long/run.sh): 400
# broker crashes under an idempotent producer, repeated durability runs,
# many-client soaks of tens of millions of records, a minute of latency.
test-long: $(BIN)/shopstream
	./tests/long/run.sh

# The performance suite (issue 9): shopstream against librdkafka's mock
# cluster, alternating, medians; summary in build/bench/summary.md.
# BENCH_ARGS: --rounds N, --quick, --no-10gb.
bench: bin/shopstream bin/kbench bin/mockbroker
	/usr/bin/python3 bench/suite.py $(BENCH_ARGS)

# The whole Online Retail file through the order processor, checked per day
# against a direct computation from the CSV (bench/online_retail_direct.py).
bench-retail: $(BIN)/shopstream
	/usr/bin/python3 bench/online_retail.py

# Event parsing against cJSON (libcjson-dev): events/s of each and the ratio.
bench-json: bin/json_bench
	./bin/json_bench

bin/json_bench: bench/json_bench.c src/shop/event.c src/shop/json.c src/common/alloc.c
	@mkdir -p bin
	$(CC) -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc -o $@ $^ -lcjson -lm

# libFuzzer harnesses: each tests/fuzz/fuzz_*.c is linked with the library,
# built with clang under ASan and UBSan, and run for FUZZ_SECONDS; its corpus
# grows in build/fuzz/corpus/<name>, seeded from tests/fuzz/seeds/<name>;
# a crash is saved as tests/fuzz/crash-* (keep it as a regression test).
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_FLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

build/fuzz/%: tests/fuzz/%.c $(LIB_SRC) build/gen/assets.c
	@mkdir -p build/fuzz
	clang $(FUZZ_FLAGS) -o $@ $< $(LIB_SRC) build/gen/assets.c $(LDLIBS)

fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do \
	    n=$$(basename $$f); c=build/fuzz/corpus/$$n; mkdir -p $$c; \
	    [ -d tests/fuzz/seeds/$$n ] && cp -n tests/fuzz/seeds/$$n/* $$c/ 2>/dev/null; \
	    echo "== $$n for $(FUZZ_SECONDS) s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=tests/fuzz/ $$c > build/fuzz/$$n.log 2>&1; rc=$$?; \
	    tail -n 2 build/fuzz/$$n.log; [ $$rc -eq 0 ] || { echo "$$n failed: see build/fuzz/$$n.log"; exit 1; }; \
	done

# The whole platform in one process; prints the dashboard's URL.  Extra
# options through DEMO_ARGS, e.g. make demo DEMO_ARGS="--rate 1000".
demo: all
	$(BIN)/shopstream demo $(DEMO_ARGS)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' | grep -v src/protocol/kmsg)

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)
