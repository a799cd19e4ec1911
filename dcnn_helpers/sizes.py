"""Experiment sizes of every notebook in every profile: data only, read through :func:`dcnn_helpers.config.sizes`.

Ground floor of the course (no imports). ``SIZES[notebook][profile]`` holds one notebook's settings; the keys of
one entry are the same in the three profiles (checked by ``tests/test_config.py``), so a notebook never branches
on the profile itself. Each notebook owns its entry, between its ``--- NN`` and ``--- end NN`` markers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SIZES"]

# The gpu profile is sized so that the whole course runs in one sitting on one H100: notebook 07 (full CIFAR-10) in
# about 5 minutes, the other seven together in about 4. Their small nets gain little from a GPU, so most keep the
# laptop sizes; 05 and 06 train on more CIFAR-10 images there.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    # --- 00 setup and tour ---
    "00_setup_and_tour": {
        "smoke": {"hidden_units": 8, "plot_points": 201},
        "laptop": {"hidden_units": 8, "plot_points": 1001},
        "gpu": {"hidden_units": 8, "plot_points": 1001},
    },
    # --- end 00 ---
    # --- 01 linear regions ---
    "01_linear_regions": {
        "smoke": {
            "depth_widths": [[6], [6, 6], [6, 6, 6]],
            "width_widths": [[4, 4], [8, 8], [12, 12]],
            "grid_nets": [[8, 8], [16, 16]],
            "grid_resolutions": [20, 50, 100],
            "bound_widths": [4, 8, 12],
            "bound_depths": [1, 2, 3],
            "seeds": 1,
            "spiral_points": 200,
            "train_widths": [8, 8, 8],
            "train_steps": 60,
            "count_points": 6,
            "explorer_width": 8,
        },
        "laptop": {
            "depth_widths": [[16], [16, 16], [16, 16, 16]],
            "width_widths": [[8, 8], [24, 24], [32, 32]],
            "grid_nets": [[16, 16], [32, 32, 32], [64, 64, 64]],
            "grid_resolutions": [30, 100, 300, 1000],
            "bound_widths": [8, 16, 24, 32, 48, 64],
            "bound_depths": [1, 2, 3],
            "seeds": 3,
            "spiral_points": 400,
            "train_widths": [32, 32, 32],
            "train_steps": 2000,
            "count_points": 25,
            "explorer_width": 16,
        },
        "gpu": {
            "depth_widths": [[16], [16, 16], [16, 16, 16]],
            "width_widths": [[8, 8], [24, 24], [32, 32]],
            "grid_nets": [[16, 16], [32, 32, 32], [64, 64, 64]],
            "grid_resolutions": [30, 100, 300, 1000],
            "bound_widths": [8, 16, 24, 32, 48, 64],
            "bound_depths": [1, 2, 3],
            "seeds": 3,
            "spiral_points": 400,
            "train_widths": [32, 32, 32],
            "train_steps": 2000,
            "count_points": 25,
            "explorer_width": 16,
        },
    },
    # --- end 01 ---
    # --- 02 depth separation ---
    "02_depth_separation": {
        # saw_*: deep-vs-shallow sawtooth fits; sgd_*: restarts against exact ERM; erm_D_*: data sizes timed
        # ex1_steps: Exercise 1's short and long Adam runs
        "smoke": {"saw_k": 2, "saw_layers": [1, 2, 3], "saw_restarts": 2, "saw_steps": 100, "saw_points": 65,
                  "sgd_restarts": 8, "sgd_steps": 200, "erm_D_1d": [6, 8, 12, 16], "erm_D_2d": [4, 5, 6],
                  "ex1_steps": [30, 100]},
        "laptop": {"saw_k": 3, "saw_layers": [1, 2, 3, 4, 5, 6], "saw_restarts": 6, "saw_steps": 3000,
                   "saw_points": 129, "sgd_restarts": 100, "sgd_steps": 3000,
                   "erm_D_1d": [8, 12, 16, 24, 32, 48, 64], "erm_D_2d": [5, 6, 7, 8, 9, 10],
                   "ex1_steps": [300, 3000]},
        "gpu": {"saw_k": 3, "saw_layers": [1, 2, 3, 4, 5, 6], "saw_restarts": 6, "saw_steps": 3000,
                "saw_points": 129, "sgd_restarts": 100, "sgd_steps": 3000,
                "erm_D_1d": [8, 12, 16, 24, 32, 48, 64], "erm_D_2d": [5, 6, 7, 8, 9, 10],
                "ex1_steps": [300, 3000]},
    },
    # --- end 02 ---
    # --- 03 dcnn approximation ---
    # cases: (d, r, levels of the bump-series target). The ablations use ablation_case (one of cases), at
    # ablation_depths (pooling; padding uses every depth a plain net allows) with ablation_seeds seeds.
    # workers: fits trained at once in forked one-thread processes (Linux; the nets are too small for a GPU, so the
    # gpu profile differs from laptop only in using the GPU machine's CPU cores).
    # The architecture keys (filter_size, channels, pooling, pool_every) must agree across profiles: a checked cell
    # prints parameter counts computed from them.
    "03_dcnn_approximation": {
        "smoke": {
            "filter_size": 2, "channels": 4, "pooling": 2, "pool_every": 2, "lr": 1e-2, "fc_hidden_layers": 2,
            "cases": [(1, 1.0, 10), (2, 1.0, 5)], "depths": [2, 4], "samples": 128, "test_samples": 512,
            "steps": 40, "seeds": 2, "erm_case": (1, 1.0, 10), "erm_sizes": [32, 64, 128], "erm_noise": 0.5,
            "erm_depth_scale": 1.0, "ablation_case": (2, 1.0, 5), "ablation_depths": [2, 4], "ablation_seeds": 2,
            "workers": 1,
        },
        "laptop": {
            "filter_size": 2, "channels": 4, "pooling": 2, "pool_every": 2, "lr": 1e-2, "fc_hidden_layers": 2,
            "cases": [(1, 0.5, 10), (1, 1.0, 10), (2, 1.0, 5), (4, 1.0, 3)], "depths": [2, 3, 4, 6, 8],
            "samples": 1024, "test_samples": 8192, "steps": 500, "seeds": 4, "erm_case": (1, 1.0, 10),
            "erm_sizes": [64, 128, 256, 512, 1024, 2048], "erm_noise": 0.5, "erm_depth_scale": 1.0,
            "ablation_case": (4, 1.0, 3), "ablation_depths": [2, 4, 8], "ablation_seeds": 4, "workers": 2,
        },
        "gpu": {
            "filter_size": 2, "channels": 4, "pooling": 2, "pool_every": 2, "lr": 1e-2, "fc_hidden_layers": 2,
            "cases": [(1, 0.5, 10), (1, 1.0, 10), (2, 1.0, 5), (4, 1.0, 3)], "depths": [2, 3, 4, 6, 8],
            "samples": 1024, "test_samples": 8192, "steps": 500, "seeds": 4, "erm_case": (1, 1.0, 10),
            "erm_sizes": [64, 128, 256, 512, 1024, 2048], "erm_noise": 0.5, "erm_depth_scale": 1.0,
            "ablation_case": (4, 1.0, 3), "ablation_depths": [2, 4, 8], "ablation_seeds": 4, "workers": 16,
        },
    },
    # --- end 03 ---
    # --- 04 local linear recovery ---
    "04_local_linear_recovery": {
        # bench_samples: rows of the timed Jacobian (300 parameters); rec_*: the recovery experiment (widths d=5,
        # m=50 are fixed in the notebook): targets with k neurons, sample sizes n = ratio * k(d+1), seeds, GD steps.
        "smoke": {"bench_samples": 500, "rec_ks": (1, 2), "rec_ratios": (0.5, 1.0, 1.5, 2.0, 3.0),
                  "rec_seeds": 1, "rec_steps": 300, "rec_n_test": 200},
        "laptop": {"bench_samples": 4000, "rec_ks": (1, 2, 3),
                   "rec_ratios": (0.5, 0.67, 0.83, 1.0, 1.17, 1.33, 1.5, 1.67, 1.83, 2.0, 2.33, 2.67, 3.0),
                   "rec_seeds": 3, "rec_steps": 8000, "rec_n_test": 1000},
        "gpu": {"bench_samples": 4000, "rec_ks": (1, 2, 3, 4),
                "rec_ratios": (0.5, 0.67, 0.83, 1.0, 1.17, 1.33, 1.5, 1.67, 1.83, 2.0, 2.33, 2.67, 3.0, 4.0),
                "rec_seeds": 4, "rec_steps": 8000, "rec_n_test": 2000},
    },
    # --- end 04 ---
    # --- 05 parameter linear prediction ---
    "05_parameter_linear_prediction": {
        # 2-D trajectories: steps per run, contour grid, noise seeds; CIFAR: model name for plp_cifar.cifar_model, data,
        # main comparison (seeds x {SGD, SGD+PLP}) and a sweep over learning rate x prediction step x sweep_seeds;
        # cos_*: steps and window of the update-cosine measurement
        "smoke": {
            "surface_steps": 90, "grid_points": 80, "noise_seeds": 4, "data_source": "sample", "model": "tiny-8",
            "n_train": 256, "n_test": 200, "epochs": 1, "batch_size": 64, "lr": 0.05, "seeds": [0, 1],
            "sweep_train": 128, "sweep_test": 100, "sweep_epochs": 1, "sweep_lrs": [0.05, 0.2], "sweep_steps": [1.0],
            "sweep_seeds": [0, 1], "cos_steps": 12, "cos_window": 3,
        },
        "laptop": {
            "surface_steps": 450, "grid_points": 200, "noise_seeds": 20, "data_source": "full", "model": "tiny-16",
            "n_train": 4000, "n_test": 2000, "epochs": 5, "batch_size": 64, "lr": 0.05, "seeds": [0, 1, 2, 3],
            "sweep_train": 1000, "sweep_test": 1000, "sweep_epochs": 2, "sweep_lrs": [0.02, 0.05, 0.2],
            "sweep_steps": [0.5, 1.0, 2.0], "sweep_seeds": [0, 1, 2], "cos_steps": 240, "cos_window": 8,
        },
        "gpu": {
            "surface_steps": 450, "grid_points": 200, "noise_seeds": 20, "data_source": "full", "model": "tiny-32",
            "n_train": None, "n_test": None, "epochs": 4, "batch_size": 128, "lr": 0.1, "seeds": [0, 1, 2, 3, 4],
            "sweep_train": 2000, "sweep_test": 2000, "sweep_epochs": 2, "sweep_lrs": [0.02, 0.05, 0.2],
            "sweep_steps": [0.5, 1.0, 2.0], "sweep_seeds": [0, 1, 2], "cos_steps": 600, "cos_window": 10,
        },
    },
    # --- end 05 ---
    # --- 06 merge and run ---
    # train_n / grad_n: blocks per stage (DMRNet and inception-like of depth 6n+2, ResNet of depth 12n+2);
    # train_seeds: one training run per network and seed
    "06_merge_and_run": {
        "smoke": {"data_source": "sample", "n_train": 128, "n_test": 100, "epochs": 1, "batch_size": 64,
                  "train_n": 1, "grad_n": 1, "grad_batch": 8, "train_seeds": [0, 1]},
        "laptop": {"data_source": "full", "n_train": 2000, "n_test": 1000, "epochs": 3, "batch_size": 64,
                   "train_n": 1, "grad_n": 9, "grad_batch": 8, "train_seeds": [0, 1, 2]},
        "gpu": {"data_source": "full", "n_train": 20000, "n_test": None, "epochs": 3, "batch_size": 128,
                "train_n": 3, "grad_n": 9, "grad_batch": 64, "train_seeds": [0, 1, 2]},
    },
    # --- end 06 ---
    # --- 07 cifar10 gpu ---
    # first: one run of the speed-run recipe (bench.fast_config, these fields changed) with per-epoch evaluation and
    # a checkpoint; speed: the recipe once per speed_seeds; ablation: the recipe with each technique removed (the
    # first ablation_rows rows of bench.ABLATIONS, None: all), once per ablation_seeds, on ablation_train training and
    # ablation_test test images (None: all); pair: ResNet and DMRNet of equal parameters, each with and without PLP,
    # once per compare_seeds, trained with `compare`; matmul_size: the compute ceiling.
    "07_cifar10_gpu": {
        "smoke": {
            "data_source": "sample", "n_train": 64, "n_test": 50, "matmul_size": 512,
            "first": {"epochs": 2, "batch_size": 32, "eval_every_epoch": True},
            "speed": {"batch_size": 32, "epochs": 1}, "speed_seeds": [0],
            "ablation": {"batch_size": 16, "epochs": 1}, "ablation_train": 32, "ablation_test": None,
            "ablation_seeds": [0], "ablation_rows": 3,
            "pair": ["resnet-14", "dmrnet-8"], "compare_seeds": [0, 1],
            "compare": {"n_train": 32, "epochs": 1, "batch_size": 32, "lr": 0.1, "label_smoothing": 0.0},
            "ddp_bench": {"processes": [1, 2], "model": "fast", "n_train": 64, "batch_size": 32, "epochs": 1},
        },
        "laptop": {
            "data_source": "full", "n_train": 5000, "n_test": 1000, "matmul_size": 1024,
            "first": {"epochs": 2, "batch_size": 256, "eval_every_epoch": True},
            "speed": {"batch_size": 256, "epochs": 1}, "speed_seeds": [0],
            "ablation": {"batch_size": 128, "epochs": 2}, "ablation_train": 768, "ablation_test": 500,
            "ablation_seeds": [0, 1, 2], "ablation_rows": None,
            "pair": ["resnet-14", "dmrnet-8"], "compare_seeds": [0, 1, 2],
            "compare": {"n_train": 1000, "epochs": 2, "batch_size": 64, "lr": 0.1, "label_smoothing": 0.0},
            "ddp_bench": {"processes": [1, 2], "model": "fast", "n_train": 1024, "batch_size": 128, "epochs": 2},
        },
        "gpu": {
            "data_source": "full", "n_train": None, "n_test": None, "matmul_size": 8192,
            "first": {"eval_every_epoch": True},
            "speed": {}, "speed_seeds": [0, 1, 2],
            "ablation": {}, "ablation_train": None, "ablation_test": None, "ablation_seeds": [0, 1, 2],
            "ablation_rows": None,
            "pair": ["resnet-110", "dmrnet-56"], "compare_seeds": [0, 1, 2],
            "compare": {"n_train": 20000, "epochs": 2, "batch_size": 512, "lr": 0.4, "label_smoothing": 0.1},
            "ddp_bench": {"processes": [1, 2], "model": "fast", "n_train": 1024, "batch_size": 128, "epochs": 1},
        },
    },
    # --- end 07 ---
}
