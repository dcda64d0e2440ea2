# clocklab tasks. `just --list` shows them.

# Run an experiment from experiments/NAME.toml (e.g. `just experiment skew`; add --quick for a smoke run).
experiment name *flags:
    cargo run --release -- experiment {{name}} {{flags}}

# Run the oracle again on a saved run, e.g. `just analyze results/skew/<run-id>`.
analyze run_dir:
    cargo run --release -- analyze {{run_dir}}

# Run the whole test suite (what CI runs after fmt and clippy).
test:
    cargo test --release

# Lints as CI runs them.
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# The write-path benchmark: echo vs SQLite vs replicated PUTs.
bench:
    cargo bench --bench write_path

# The oracle benchmark: a synthetic history of 1,000,000 writes.
bench-oracle:
    cargo bench --bench oracle

# The plugin benchmark: acknowledged writes through a Python strategy against the built-in.
bench-plugin:
    cargo bench --bench plugin

# Check a strategy's promises (a plugin's path or a built-in's name), e.g. `just check-strategy examples/strategies/keep_larger.py`.
check-strategy strategy *flags:
    cargo run --release -- strategy check {{strategy}} {{flags}}

# Start a 3-replica cluster on ports 7001-7003 in the foreground (Ctrl-C stops it).
cluster token="lab-token":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release
    trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT
    for id in 1 2 3; do
        peers=$(for p in 1 2 3; do if [ $p != $id ]; then printf '%s=127.0.0.1:700%s,' $p $p; fi; done)
        target/release/clocklab replica --id $id --listen 127.0.0.1:700$id \
            --data target/cluster/replica-$id --peers "${peers%,}" --cluster-token {{token}} --clock model &
    done
    wait

# Serve the dashboard on http://127.0.0.1:7070/ (results, dropped writes explained, live lab, Figure 8-3).
dashboard port="7070":
    cargo run --release -- dashboard --port {{port}}

# List the experiments with what each asks.
experiments:
    cargo run --release -- experiment --list

# Refresh the README's dashboard screenshots (docs/screenshots/) from the browser tests.
screenshots:
    CLOCKLAB_SCREENSHOTS=docs/screenshots cargo test --release --test projector --test dashboard --test jobs --test presets

# Make an experiment's committed reference run: its --quick sweep, with the history compressed.
reference name:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo run --release -- experiment {{name}} --quick
    run=$(ls -d results/{{name}}/*/ | sort -V | tail -1)
    gzip -9n "${run}history.jsonl"
    printf "The reference run of %s: the one the README quotes and the dashboard's quiz grades against.\n" "{{name}}" > "${run}REFERENCE"
    echo "reference run: ${run} (results/ is ignored for runs a user makes: commit it with git add -f ${run}, and remove the old one)"

# Run an experiment on real processes and in the simulator and compare their drop rates (e.g. `just validate skew --quick`).
validate name *flags:
    cargo run --release -- validate {{name}} {{flags}}

# The engines benchmark: acknowledged writes per second, simulator against real processes (run it alone).
bench-engines:
    cargo bench --bench engines
