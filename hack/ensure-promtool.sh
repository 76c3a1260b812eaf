#!/usr/bin/env bash
# The chart's alert rules and dashboard queries are checked with promtool
# (Debian's `prometheus` package ships it). Install it when missing; fail
# loudly when we cannot. The package's Prometheus service is not started.
set -euo pipefail
if command -v promtool >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "ensure-promtool: no promtool and no apt-get; install promtool and rerun 'make test'" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "ensure-promtool: installing Debian's prometheus package for promtool (one time)" >&2
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus; }; then
  echo "ensure-promtool: 'apt-get install prometheus' failed; run it by hand, then rerun 'make test'" >&2
  exit 1
fi
