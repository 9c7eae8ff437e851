//! `planner calibrate` on synthetic harness CSVs with known answers, and the
//! prediction band of calibrated devices.

use std::path::Path;

use planner::analytical::band::band;
use planner::analytical::simulate;
use planner::microbench::{write_csv, Kernel, MicrobenchRow};
use planner::Scenario;

use crate::common::{
    catalog, planner, repo, scenario_file, stderr, stdout, temp_dir, temp_path, TempPath,
};

/// A device whose reads take 20 us + (bytes / 25 GB/s) (1 - 0.03 log2(2^32 / bytes))
/// (25 GB/s at 4 GiB, the largest read, and 3% less time per byte for each halving
/// below it), whose GEMMs follow the roofline with 400 GFLOP/s x m / (m + 8) (fp32)
/// and 800 x m / (m + 16) (fp16), whose matrix-vector kernel streams at 0.8 x the read
/// law and spends 50 ns per output row, and whose dispatches cost 10 us each.
fn synthetic_rows() -> Vec<MicrobenchRow> {
    let mut rows = vec![MicrobenchRow::memory_capacity("cpu", "synthetic", 64e9)];
    let largest = 2f64.powi(32);
    let memory = |bytes: f64| {
        let s = bytes.clamp(2f64.powi(20), largest);
        20e-6 + bytes / 25e9 * (1.0 - 0.03 * (largest / s).log2())
    };
    for e in 20..=32 {
        let bytes = 2f64.powi(e);
        rows.push(MicrobenchRow::timed(
            "cpu",
            "synthetic",
            Kernel::Read,
            None,
            [0, 0, 0],
            bytes,
            0.0,
            &[memory(bytes)],
        ));
    }
    for (dtype, peak, half, bpe) in [
        (planner::hardware::ComputeDtype::Fp32, 400e9, 8.0, 4.0),
        (planner::hardware::ComputeDtype::Fp16, 800e9, 16.0, 2.0),
    ] {
        for m in [1u64, 4, 16, 64, 256, 1024, 4096] {
            for (n, k) in [(4096u64, 4096u64), (14336, 4096), (4096, 14336)] {
                let flops = 2.0 * (m * n * k) as f64;
                let bytes = bpe * (m * k + n * k + m * n) as f64;
                let compute = flops * (m as f64 + half) / (peak * m as f64);
                let t = compute.max(memory(bytes));
                rows.push(MicrobenchRow::timed(
                    "cpu",
                    "synthetic",
                    Kernel::Gemm,
                    Some(dtype),
                    [m, n, k],
                    bytes,
                    flops,
                    &[t],
                ));
            }
        }
    }
    for (n, k) in [
        (3072u64, 3072u64),
        (4096, 4096),
        (6144, 4096),
        (3072, 8192),
        (14336, 4096),
        (4096, 14336),
    ] {
        let bytes = 4.0 * (n * k + k + n) as f64;
        rows.push(MicrobenchRow::timed(
            "cpu",
            "synthetic",
            Kernel::Gemv,
            Some(planner::hardware::ComputeDtype::Fp32),
            [1, n, k],
            bytes,
            2.0 * (n * k) as f64,
            &[memory(bytes) / 0.8 + n as f64 * 50e-9],
        ));
    }
    for launches in [1u64, 4, 16, 64, 256, 1024] {
        let t = 2e-6 + launches as f64 * 10e-6;
        rows.push(MicrobenchRow::timed(
            "cpu",
            "synthetic",
            Kernel::Dispatch,
            None,
            [launches, 0, 0],
            0.0,
            0.0,
            &[t],
        ));
    }
    rows
}

fn fit<'a>(json: &'a serde_json::Value, parameter: &str) -> &'a serde_json::Value {
    json["fits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["parameter"] == parameter)
        .unwrap_or_else(|| panic!("no fit {parameter}: {json}"))
}

/// `rows` as a harness CSV, `synthetic.csv` in a directory of its own.
fn rows_csv(rows: &[MicrobenchRow]) -> TempPath {
    let csv = temp_path("synthetic.csv");
    let mut buffer = Vec::new();
    write_csv(&mut buffer, rows).unwrap();
    std::fs::write(&*csv, buffer).unwrap();
    csv
}

#[test]
fn calibrate_recovers_a_synthetic_device_and_writes_a_valid_profile() {
    let csv = rows_csv(&synthetic_rows());
    let out = csv.with_file_name("synthetic-device.toml");
    let o = planner(&[
        "calibrate",
        csv.to_str().unwrap(),
        "--name",
        "synthetic",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    // Bandwidth 25 GB/s (at 4 GiB, the largest read fitted: sizes 2^20..2^32 with
    // 2^23, 2^27 and 2^31 held out); half = 20 us x 25 GB/s = 500 kB = 0.5 MB; the
    // size term 0.03 per doubling; exact data: R^2 1.
    let decline = fit(&json, "efficiency.bandwidth_by_size.decline_per_doubling");
    assert!(
        (decline["value"].as_f64().unwrap() - 0.03).abs() < 1e-9,
        "{decline}"
    );
    let bw = fit(&json, "memory.bandwidth_gb_s");
    assert!((bw["value"].as_f64().unwrap() - 25.0).abs() < 1e-6, "{bw}");
    assert!(bw["r_squared"].as_f64().unwrap() > 0.999_999);
    assert_eq!(
        bw["n_points"], 10,
        "13 sizes, every fourth held out: 10 fitted"
    );
    let half = fit(&json, "efficiency.bandwidth_half_mb");
    assert!(
        (half["value"].as_f64().unwrap() - 0.5).abs() < 1e-6,
        "{half}"
    );
    // Compute 0.4 and 0.8 TFLOPS, half point 8 rows.
    let fp32 = fit(&json, "compute.fp32.tflops");
    assert!(
        (fp32["value"].as_f64().unwrap() - 0.4).abs() < 1e-4,
        "{fp32}"
    );
    let fp16 = fit(&json, "compute.fp16.tflops");
    assert!(
        (fp16["value"].as_f64().unwrap() - 0.8).abs() < 2e-4,
        "{fp16}"
    );
    let rows = fit(&json, "compute.fp32.half_rows");
    assert!(
        (rows["value"].as_f64().unwrap() - 8.0).abs() < 0.05,
        "{rows}"
    );
    let rows16 = fit(&json, "compute.fp16.half_rows");
    assert!(
        (rows16["value"].as_f64().unwrap() - 16.0).abs() < 0.1,
        "{rows16}"
    );
    // The gemv rows take 1 / 0.8 of the read law's time plus 50 ns per output row:
    // fraction 0.8 and 50 ns, exactly (6 shapes, the 4th by shape held out).
    let matvec = fit(&json, "efficiency.matvec_bandwidth_fraction");
    assert!(
        (matvec["value"].as_f64().unwrap() - 0.8).abs() < 1e-9,
        "{matvec}"
    );
    let output = fit(&json, "efficiency.matvec_output_ns");
    assert!(
        (output["value"].as_f64().unwrap() - 50.0).abs() < 1e-6,
        "{output}"
    );
    // One-row GEMMs are in no fit and come back as a separate comparison: 21 per type
    // of which the 3 one-row shapes per type are set aside.
    assert_eq!(json["one_row_gemm"].as_array().unwrap().len(), 6);
    let dispatch = fit(&json, "efficiency.dispatch_overhead_us");
    assert!((dispatch["value"].as_f64().unwrap() - 10.0).abs() < 1e-6);
    // Every key the contract names is there.
    for f in json["fits"].as_array().unwrap() {
        for key in ["parameter", "value", "std_error", "r_squared", "n_points"] {
            assert!(!f[key].is_null(), "{key} missing in {f}");
        }
    }
    // Held-out shapes of exact data are predicted exactly (planner's own roofline).
    for h in json["held_out"].as_array().unwrap() {
        assert!(h["relative_error"].as_f64().unwrap().abs() < 1e-3, "{h}");
    }
    let text = std::fs::read_to_string(&out).unwrap();
    let device = planner::hardware::Device::from_toml("synthetic-device", "out", &text).unwrap();
    assert_eq!(device.family, "cpu");
    assert!((device.memory_bandwidth_gb_s - 25.0).abs() < 1e-9);
    assert!((device.efficiency.matvec_bandwidth_fraction - 0.8).abs() < 1e-3);
    assert!((device.efficiency.matvec_output_s - 50e-9).abs() < 1e-12);
    let law = device.efficiency.bandwidth_by_size.unwrap();
    // The range is the reads fitted, written unrounded.
    assert!(
        (law.from_bytes / 2f64.powi(20) - 1.0).abs() < 1e-12,
        "{law:?}"
    );
    assert!(
        (law.to_bytes / 2f64.powi(32) - 1.0).abs() < 1e-12,
        "{law:?}"
    );
    // fp32 is the CPU's primary type (compute_half_rows); fp16's own half point is
    // listed per type and is what the timing uses for fp16.
    assert!((device.efficiency.compute_half_rows - 8.0).abs() < 0.05);
    assert!(
        (device
            .efficiency
            .half_rows_for(planner::hardware::ComputeDtype::Fp16)
            - 16.0)
            .abs()
            < 0.1
    );
    assert!(text.contains("fitted from"), "{text}");
}

#[test]
fn calibrate_without_input_is_invalid_input() {
    let o = planner(&["calibrate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn band_of_a_ten_percent_device_is_ten_percent_of_the_times() {
    // Every op time is max(compute, memory), both scaled by the same 1 +/- 0.1, and the
    // planner-harness runtime's overhead is dispatch only (scaled alike) with no host
    // time: so every time scales by exactly 0.9 and 1.1.
    let mut catalog = catalog();
    let device = catalog.devices.get_mut("local-cpu").unwrap();
    let u = device.uncertainty.as_mut().unwrap();
    u.compute = 0.1;
    u.bandwidth = 0.1;
    u.dispatch = 0.1;
    let path = repo().join("scenarios/cpu-decode-llama-3.2-3b.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let scenario = Scenario::from_toml("cpu-decode", &text, &catalog).unwrap();
    let report = simulate(&scenario).unwrap();
    let b = band(&scenario).unwrap().unwrap();
    let tpot = report.tpot_s.unwrap();
    let [lo, hi] = b.tpot_s.unwrap();
    assert!((lo / tpot - 0.9).abs() < 1e-9, "{lo} vs {tpot}");
    assert!((hi / tpot - 1.1).abs() < 1e-9, "{hi} vs {tpot}");
    // Rates: 1/1.1 and 1/0.9 of the point prediction.
    let [r_lo, r_hi] = b.decode_tokens_per_s.unwrap();
    let rate = report.decode_tokens_per_s.unwrap();
    assert!((r_lo * 1.1 / rate - 1.0).abs() < 1e-9 && (r_hi * 0.9 / rate - 1.0).abs() < 1e-9);
}

#[test]
fn json_has_a_band_for_calibrated_devices_and_null_otherwise() {
    let o = planner(&[
        "simulate",
        "scenarios/cpu-decode-gemma-3-4b.toml",
        "--format",
        "json",
    ]);
    assert!(o.status.success());
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rate = json["decode_tokens_per_s"].as_f64().unwrap();
    let interval = json["band"]["decode_tokens_per_s"].as_array().unwrap();
    assert!(interval[0].as_f64().unwrap() <= rate && rate <= interval[1].as_f64().unwrap());
    let o = planner(&[
        "simulate",
        "scenarios/exo-m3-ultra-alone.toml",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(json["band"].is_null());
    assert!(json.get("band").is_some());
}

/// LLaMA-2 7B on the 76-core M2 Ultra as llama-bench `-o csv` records: the published
/// pp512 and tg128 figures of discussion #4167 (validation cases V025-V030), with the
/// GGUF sizes llama-bench reports for F16, Q8_0 and Q4_0 (12.55, 6.67 and 3.56 GiB).
const LLAMA_BENCH: &str = "\
build_commit,model_type,model_size,model_n_params,n_ubatch,type_k,type_v,n_prompt,n_gen,avg_ts
8e672ef,llama 7B F16,13476839424,6738415616,512,f16,f16,512,0,1401.85
8e672ef,llama 7B F16,13476839424,6738415616,512,f16,f16,0,128,41.02
8e672ef,llama 7B Q8_0,7161089280,6738415616,512,f16,f16,512,0,1248.59
8e672ef,llama 7B Q8_0,7161089280,6738415616,512,f16,f16,0,128,66.64
8e672ef,llama 7B Q4_0,3825065984,6738415616,512,f16,f16,512,0,1238.48
8e672ef,llama 7B Q4_0,3825065984,6738415616,512,f16,f16,0,128,94.27
8e672ef,llama 7B Q4_0,3825065984,6738415616,512,f16,f16,512,128,80.0
";

#[test]
fn llama_bench_records_that_are_all_skipped_are_invalid_input() {
    // Both records ran a q8_0 K cache, which the import skips (f16 only): nothing is
    // left to fit. That is the input's fault (exit 2, naming --from and why), not a
    // failure of the fit (it was exit 1, "no fit-half cases").
    let bench = temp_path("bench.csv");
    let rows: Vec<String> = LLAMA_BENCH
        .lines()
        .take(3)
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else {
                l.replacen(",f16,f16,", ",q8_0,f16,", 1)
            }
        })
        .collect();
    std::fs::write(&*bench, rows.join("\n")).unwrap();
    let o = planner(&[
        "calibrate",
        "--runtime",
        "llama.cpp",
        "--from",
        bench.to_str().unwrap(),
        "--device",
        "m2-ultra-76c",
        "--model",
        "llama-2-7b",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`--from` = 2 rows and no fit case"), "{err}");
    assert!(
        err.contains("KV cache type q8_0/f16 is not imported"),
        "{err}"
    );
    assert!(err.contains("1 more row skipped"), "{err}");
}

#[test]
fn llama_bench_output_fits_a_runtime_profile_that_scenarios_can_use() {
    let temp = temp_dir();
    let dir = temp.path();
    let catalog_dir = dir.join("catalog");
    for sub in [
        "hardware",
        "hardware/links",
        "models",
        "runtimes",
        "formats",
    ] {
        std::fs::create_dir_all(catalog_dir.join(sub)).unwrap();
        for entry in std::fs::read_dir(repo().join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                std::fs::copy(&path, catalog_dir.join(sub).join(path.file_name().unwrap()))
                    .unwrap();
            }
        }
    }
    let bench = dir.join("bench.csv");
    std::fs::write(&bench, LLAMA_BENCH).unwrap();
    let out = catalog_dir.join("runtimes/llama.cpp-m2u.toml");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--catalog",
            catalog_dir.to_str().unwrap(),
            "calibrate",
            "--runtime",
            "llama.cpp",
            "--from",
            bench.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| planner(&a.iter().map(String::as_str).collect::<Vec<_>>());

    // Records do not name a catalog device and model: the user must.
    let o = run(args(&[]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--device"), "{}", stderr(&o));
    // Six records cannot fit the suite's seven Apple parameters.
    let o = run(args(&["--device", "m2-ultra-76c", "--model", "llama-2-7b"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("at most 5 parameters"),
        "{}",
        stderr(&o)
    );

    let o = run(args(&[
        "--device",
        "m2-ultra-76c",
        "--model",
        "llama-2-7b",
        "--params",
        "compute_fraction,bandwidth_fraction,dispatch_scale",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let fits = json["fits"].as_array().unwrap();
    assert_eq!(fits.len(), 3, "{json}");
    assert!(fits
        .iter()
        .all(|f| f["family"] == "apple" && f["n_points"] == 6));
    // The combined pp512+tg128 record is listed, not fitted.
    assert_eq!(json["skipped"][0]["id"], "LB007", "{json}");

    // The written profile is a runtime a scenario can name by its file stem, and it
    // reproduces the records it was fitted to: tg128 of F16 within 10% of 41.02 tok/s.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("--params compute_fraction,bandwidth_fraction"),
        "{text}"
    );
    let scenario = dir.join("tg128.toml");
    std::fs::write(
        &scenario,
        "[model]\npreset = \"llama-2-7b\"\nweights = \"f16\"\n\n[runtime]\npreset = \"llama.cpp-m2u\"\n\n\
         [[cluster.groups]]\ndevice = \"m2-ultra-76c\"\ncount = 1\n\n\
         [workload]\nprompt_tokens = 1\noutput_tokens = 128\nbatch = 1\n",
    )
    .unwrap();
    let o = planner(&[
        "--catalog",
        catalog_dir.to_str().unwrap(),
        "simulate",
        scenario.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rate = j["decode_tokens_per_s"].as_f64().unwrap();
    assert!((rate / 41.02 - 1.0).abs() < 0.10, "{rate}");
}

/// The committed profiles `planner calibrate` wrote: the file, the harness CSV and the
/// other arguments of the command its first line records.
const CALIBRATED_PROFILES: [(&str, &str, &[&str]); 3] = [
    (
        "hardware/local-cpu.toml",
        "harness/results/dev-vm/cpu-quick.csv",
        &[
            "--name",
            "AMD EPYC, 2 vCPU KVM guest (the project's development VM), calibrated",
        ],
    ),
    // Its base is the committed file itself: calibrate copies the base's published
    // specs, notes and ports and replaces the efficiency figures, so the command
    // gives the same file again.
    (
        "hardware/h100-sxm.toml",
        "hardware/measurements/nvidia-h100-80gb-hbm3-2026-11-22.csv",
        &["--base", "h100-sxm", "--name", "NVIDIA H100 SXM5 80GB"],
    ),
    (
        "hardware/h200-sxm.toml",
        "hardware/measurements/nvidia-h200-2026-11-22.csv",
        &["--base", "h200-sxm", "--name", "NVIDIA H200 SXM 141GB"],
    ),
];

#[test]
fn the_committed_calibrated_profiles_are_what_calibrate_writes_from_the_committed_csv() {
    // Run each profile's command again (writing elsewhere) and compare, with the output
    // path put back.
    for (profile, csv, args) in CALIBRATED_PROFILES {
        let committed = std::fs::read_to_string(repo().join(profile)).unwrap();
        assert!(committed.contains(csv), "{profile} does not name {csv}");
        let stem = Path::new(profile).file_name().unwrap();
        let dir = temp_dir();
        let out = dir.path().join(stem);
        let mut command = vec!["calibrate", csv];
        command.extend_from_slice(args);
        command.extend(["--out", out.to_str().unwrap()]);
        let o = planner(&command);
        assert!(o.status.success(), "{}", stderr(&o));
        let written = std::fs::read_to_string(&out)
            .unwrap()
            .replace(out.to_str().unwrap(), profile);
        assert!(
            written == committed,
            "{profile} differs from what `planner {}` writes: regenerate it with that \
             command (--out {profile})",
            command[..command.len() - 2].join(" ")
        );
    }
}

#[test]
fn a_profile_on_a_base_device_keeps_each_types_fitted_rate() {
    // The synthetic device runs fp32 at 0.4 and fp16 at 0.8 TFLOPS. On a base
    // device's spec peaks, one compute fraction (fp32's) carried fp32's rate to fp16
    // as well; each type now keeps its own: achievable = its peak x its fraction.
    let csv = rows_csv(&synthetic_rows());
    let out = csv.with_file_name("synthetic-on-base.toml");
    let o = planner(&[
        "calibrate",
        csv.to_str().unwrap(),
        "--base",
        "m2-ultra-76c",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let device = planner::hardware::Device::from_toml("synthetic-on-base", "out", &text).unwrap();
    use planner::hardware::ComputeDtype::{Fp16, Fp32};
    for (dtype, tflops) in [(Fp32, 0.4), (Fp16, 0.8)] {
        let (used, peak) = device.peak_tflops_for(dtype);
        let achievable = peak * device.efficiency.fraction_for(used);
        assert!(
            (achievable - tflops).abs() < 2e-3,
            "{dtype:?}: {achievable}"
        );
    }
}

#[test]
fn the_min_statistic_fits_the_fastest_repetition_and_keeps_each_rows_spread() {
    // Every synthetic row timed twice, at t and 1.5 t: its median is 1.25 t, its
    // fastest t. Fitted to the fastest, the reads come back at the synthetic 25 GB/s,
    // every held-out row is predicted to within rounding of its fastest time, and each
    // still shows how disturbed it was: spread = median / fastest = 1.25 (the fit
    // used to overwrite the median with the fastest time, which showed 1.00).
    let rows: Vec<MicrobenchRow> = synthetic_rows()
        .into_iter()
        .map(|r| {
            if r.kernel == Kernel::MemoryCapacity {
                return r;
            }
            let t = r.median_s;
            MicrobenchRow::timed(
                &r.backend,
                &r.device,
                r.kernel,
                r.dtype,
                [r.m, r.n, r.k],
                r.bytes,
                r.flops,
                &[t, 1.5 * t],
            )
        })
        .collect();
    let csv = rows_csv(&rows);
    let run = |statistic: &str| -> serde_json::Value {
        let o = planner(&[
            "calibrate",
            csv.to_str().unwrap(),
            "--statistic",
            statistic,
            "--format",
            "json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let min = run("min");
    let rate = fit(&min, "memory.bandwidth_gb_s")["value"]
        .as_f64()
        .unwrap();
    assert!((rate / 25.0 - 1.0).abs() < 1e-3, "{rate}");
    let held = min["held_out"].as_array().unwrap();
    assert!(!held.is_empty());
    for h in held {
        let error = h["relative_error"].as_f64().unwrap();
        assert!(error.abs() < 1e-3, "{h}");
        let spread = h["spread"].as_f64().unwrap();
        assert!((spread - 1.25).abs() < 1e-9, "{h}");
    }
    // Fitted to the median, every time is 1.25 x: 25 / 1.25 = 20 GB/s.
    let median = run("median");
    let rate = fit(&median, "memory.bandwidth_gb_s")["value"]
        .as_f64()
        .unwrap();
    assert!((rate / 20.0 - 1.0).abs() < 1e-3, "{rate}");
}

#[test]
fn rows_without_a_positive_time_are_left_out_with_a_note() {
    // One read row timed at 0 s: it was dropped from the read fit silently (n 9 to 8).
    let mut rows = synthetic_rows();
    let read = rows
        .iter_mut()
        .find(|r| r.kernel == planner::microbench::Kernel::Read)
        .unwrap();
    read.median_s = 0.0;
    let csv = rows_csv(&rows);
    let o = planner(&["calibrate", csv.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let notes: Vec<&str> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.contains(&"1 row(s) without a positive median_s left out of every fit"),
        "{notes:?}"
    );
}

#[test]
fn the_gpu_decode_runs_are_predicted_within_twenty_percent_on_the_measured_gpus() {
    // harness/results/<device>/: the harness's decode engine, every layer, on the H100
    // and the H200 whose CUDA suites calibrated hardware/<device>.toml
    // (scripts/cuda-end-to-end.sh). Issue 5's end-to-end target on a CPU is 20%; the
    // same target here. Measured 2026-11-22: H100 152.55, 122.12 and 78.98 tokens/s,
    // H200 185.22, 149.66 and 102.86.
    for device in ["h100-sxm", "h200-sxm"] {
        for model in ["llama-3.2-3b", "gemma-3-4b", "llama-3.1-8b"] {
            let path = repo().join(format!("harness/results/{device}/decode-cuda-{model}.json"));
            let run: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            assert_eq!(run["backend"], "cuda");
            assert_eq!(
                run["layers_run"], run["model_layers"],
                "{model}: every layer ran"
            );
            let measured = run["tokens_per_s"].as_f64().unwrap();
            // The committed scenario names the H100; the script swaps the device the
            // same way (DEVICE=...).
            let text =
                std::fs::read_to_string(repo().join(format!("scenarios/gpu-decode-{model}.toml")))
                    .unwrap()
                    .replace("device = \"h100-sxm\"", &format!("device = \"{device}\""));
            let scenario = scenario_file(&text);
            let o = planner(&["simulate", scenario.to_str().unwrap(), "--format", "json"]);
            assert!(o.status.success(), "{}", stderr(&o));
            let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            let predicted = j["decode_tokens_per_s"].as_f64().unwrap();
            let error = predicted / measured - 1.0;
            assert!(
                error.abs() < 0.20,
                "{device} {model}: predicted {predicted:.2} tokens/s against {measured:.2} \
                 measured ({:+.1}%)",
                100.0 * error
            );
        }
    }
}
