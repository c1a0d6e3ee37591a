#!/usr/bin/env bash
# Regenerates this reproduction of Mathieu et al. (2019), Theorem 2: the three beta-VAEs of
# gin/studies/repro_mathieu_rotation.gin trained, the rotation metric evaluated on each, and the
# report written into report/. A CPU reproduction: --cpu is its full scale. Usage, scales and exit
# status: ../common.sh.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
reproduction_args mathieu_rotation "$@"

if [[ $SCALE == smoke ]]; then
    # a few steps of a smaller model, tiny metric protocols (decoding at every rotation, as the
    # full run does not, so that the smoke run exercises that path too)
    study=$(smoke_study repro_mathieu_rotation <<'GIN'
study.fixed = {
    'train.steps': 3,
    'train.batch_size': 8,
    'train.lr': 1e-3,
    'train.checkpoint_every': 3,
    'train.log_every': 1,
    'beta_vae.beta': 4.0,
    'anisotropic_gaussian.init': 'pca',
    'anisotropic_gaussian.learned': False,
    'student_t.nu': 3.0,
    'model.latent_dim': 3,
}
study.metric_params = {
    'rotation': {'beta': 4.0, 'num_rotations': 2, 'num_points': 16, 'num_samples': 1,
                 'decode_every_rotation': True, 'mig_num_train': 50, 'factor_vae_num_train': 5,
                 'factor_vae_num_eval': 5, 'factor_vae_num_variance_estimate': 50},
}
GIN
)
    study_and_report "$study" "$OUT/runs" "$OUT/report" --workers 1 --device cpu
else
    study_and_report repro_mathieu_rotation runs/repro_mathieu_rotation "${OUT:-$HERE/report}" --workers 1 --device cpu
fi
