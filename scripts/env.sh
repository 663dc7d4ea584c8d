# Sourced by the other scripts: puts the tools that setup.sh installs on PATH.
# shellcheck shell=bash
export PATH="$PWD/.tools/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Built into the server by leptos_config at compile time; cargo-leptos sets the same value, so plain
# cargo commands and cargo-leptos share build artefacts instead of rebuilding each other's.
export LEPTOS_OUTPUT_NAME=palaver
