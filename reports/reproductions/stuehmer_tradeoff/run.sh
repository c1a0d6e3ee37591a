#!/usr/bin/env bash
# Regenerates this reproduction of Stuehmer et al. (2020), Fig. 5b (MIG against reconstruction for
# the beta-VAE, beta-TCVAE and ISA-VAE over their beta grids on dSprites) and of Chen et al. (2018)
# (beta-TCVAE against the beta-VAE at equal beta): a slice of study_v1, its beta_vae, beta_tcvae
# and isa_vae runs (3 methods x 8 betas x 32 seeds), trained, evaluated and reported into report/.
# A GPU reproduction: --cpu takes the same slice of study_v1_cpu (2 seeds, 500 steps of batch 64: it
# shows that the commands work, not what the methods do) into report_cpu/. Usage, scales and exit
# status: ../common.sh.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
reproduction_args stuehmer_tradeoff "$@"

ONLY=(--only 'beta_vae/*' --only 'beta_tcvae/*' --only 'isa_vae/*')
SMOKE_ONLY=(--only 'beta_vae/beta=4.0/*' --only 'beta_tcvae/beta=4.0/*' --only 'isa_vae/*beta=4.0/*')  # a beta each
study_v1_slice
