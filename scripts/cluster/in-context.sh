#!/usr/bin/env bash
# in-context.sh COMMAND [ARGS...]: run a command (istioctl, kubectl, ...) with KUBECONFIG pinned
# to the demo's context, so it cannot act on whatever context is current.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || die "usage: in-context.sh COMMAND [ARGS...]"
pin_context
"$@"
