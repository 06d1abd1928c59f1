#!/bin/sh
# Measures what debug-info settings save per link of a binary with a large dependency tree
# (issue 15, item 4: the `fast_link` setting). See docs/benchmarks.md, "fast_link".
#
# usage: scripts/measure-fast-link.sh WORKSPACE PACKAGE BIN_SOURCE ROUNDS OUT_DIR
#
# WORKSPACE is copied to OUT_DIR/ws; each configuration builds `cargo build -p PACKAGE` in a
# target dir of its own (one cold build each), then ROUNDS interleaved rounds append a new
# function to BIN_SOURCE (relative to the workspace) and rebuild with each configuration and
# each linker (rustc's default, which is rust-lld, and mold). The linker is run through a wrapper that
# logs each link's wall time, so a round records the whole build and the link alone.
# Output: OUT_DIR/results.tsv (config, linker, round, build ms, link ms, load average).
set -eu
# The configurations hold `*` (a package glob for cargo, not for the shell).
set -f
ws_src=$1 package=$2 bin_source=$3 rounds=$4 out=$5
mkdir -p "$out"
out=$(cd "$out" && pwd)
ws="$out/ws"
if [ ! -d "$ws" ]; then
    mkdir -p "$ws"
    (cd "$ws_src" && git archive HEAD) | tar -x -C "$ws"
fi
cat > "$out/cc-timed" <<'WRAP'
#!/bin/sh
case "${FL_LINKER:-default}" in
    mold) set -- "$@" -fuse-ld=mold ;;
esac
start=$(date +%s%N)
cc "$@"
status=$?
end=$(date +%s%N)
echo "$(( (end - start) / 1000000 ))" >> "$FL_LINK_LOG"
exit $status
WRAP
chmod +x "$out/cc-timed"
triple=$(rustc -vV | sed -n 's/^host: //p')
linker_var="CARGO_TARGET_$(echo "$triple" | tr 'a-z-' 'A-Z_')_LINKER"

# name|environment|extra cargo arguments (FAST_LINK_CONFIGS replaces the list)
configs=${FAST_LINK_CONFIGS:-'base|-|-
unpacked|CARGO_PROFILE_DEV_SPLIT_DEBUGINFO=unpacked|-
deps-lines+unpacked|CARGO_PROFILE_DEV_SPLIT_DEBUGINFO=unpacked|--config=profile.dev.package."*".debug="line-tables-only"
all-lines|CARGO_PROFILE_DEV_DEBUG=line-tables-only|-'}
# The linkers each round uses: rustc's default (rust-lld since Rust 1.90 on x86_64 Linux),
# then mold.
linkers=${FAST_LINK_LINKERS:-default mold}

build() { # name env args linker log
    name=$1 envs=$2 args=$3 linker=$4 log=$5
    [ "$envs" = - ] && envs=
    [ "$args" = - ] && args=
    # shellcheck disable=SC2086
    (cd "$ws" && env $envs "$linker_var=$out/cc-timed" FL_LINKER="$linker" FL_LINK_LOG="$log" \
        CARGO_TARGET_DIR="$out/target-$name" cargo build --quiet -p "$package" $args)
}

echo "$configs" | while IFS='|' read -r name envs args; do
    echo "cold build: $name ($(uptime))" >&2
    build "$name" "$envs" "$args" default "$out/cold.log"
done

printf 'config\tlinker\tround\tbuild_ms\tlink_ms\tload1\n' > "$out/results.tsv"
# The functions a round adds are named after the run too, so that a second run over the same
# copy adds new ones.
run=$(date +%s)
round=1
while [ "$round" -le "$rounds" ]; do
    for linker in $linkers; do
        # One edit per (round, linker), seen by every configuration: each one's dir was
        # built before the edit, so each rebuilds the binary crate and links it.
        printf '\n#[allow(dead_code)]\nfn fast_link_round_%s_%s_%s() -> u64 { %s }\n' \
            "$run" "$round" "$linker" "$round" >> "$ws/$bin_source"
        echo "$configs" | while IFS='|' read -r name envs args; do
            log="$out/link-$name-$linker-$round.log"
            : > "$log"
            start=$(date +%s%N)
            build "$name" "$envs" "$args" "$linker" "$log"
            end=$(date +%s%N)
            link=$(awk '{s += $1} END {print s + 0}' "$log")
            load=$(cut -d' ' -f1 /proc/loadavg)
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$linker" "$round" \
                "$(( (end - start) / 1000000 ))" "$link" "$load" >> "$out/results.tsv"
        done
    done
    round=$((round + 1))
done
for name in $(echo "$configs" | cut -d'|' -f1); do
    bin=$(find "$out/target-$name/debug" -maxdepth 1 -type f -perm -u+x | head -1)
    printf '%s\t%s bytes\n' "$name" "$(stat -c %s "$bin")" >> "$out/sizes.tsv"
done
