#!/usr/bin/env bash
# Regenerates this reproduction of Stuehmer et al. (2020), Fig. 5a (MIG of ISA-VAE against the
# beta-VAE at beta = 1 on dSprites, over seeds): a slice of study_v1, its beta_vae and isa_vae runs
# at beta = 1 (2 x 32 seeds), trained, evaluated and reported into report/. A GPU reproduction:
# --cpu takes the same slice of study_v1_cpu (2 seeds, 500 steps of batch 64: it shows that the
# commands work, not what the priors do) into report_cpu/. Usage, scales and exit status:
# ../common.sh.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
reproduction_args stuehmer_isa_vae_beta1 "$@"

ONLY=(--only 'beta_vae/beta=1.0/*' --only 'isa_vae/*beta=1.0/*')
study_v1_slice
