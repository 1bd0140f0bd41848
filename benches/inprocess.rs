//! In-process benchmarks (criterion) of the parts every guest start pays for: indexing
//! the vault's plaintext (all keys, or only the ones a guest needs), parsing a manifest,
//! building a plan, and the scanner's per-line cost. `make bench` also measures whole
//! processes; with `PHX_BENCH_FIXTURES` set (bench/run.py sets it) the decrypt of a
//! gpg-made vault is measured here too.
#![allow(missing_docs)]

use std::hint::black_box;

use camino::Utf8Path;
use criterion::{Criterion, criterion_group, criterion_main};
use phx_hook::vault::{Vault, VaultInfo, Wanted};

fn vault_json(n: usize) -> String {
    let mut s = String::from("{\"_phx\":{\"version\":1}");
    for i in 0..n {
        if i % 100 == 0 {
            if i > 0 {
                s.push('}');
            }
            s.push_str(&format!(",\"g{:03}\":{{", i / 100));
        } else {
            s.push(',');
        }
        s.push_str(&format!(
            "\"k{:02}\":\"value-{i:08}-abcdefghijklmnopqrstuv\"",
            i % 100
        ));
    }
    s.push_str("}}");
    s
}

fn manifest(nfiles: usize) -> String {
    let mut y = String::from("guest: qemu\nfiles:\n");
    for i in 0..nfiles {
        y.push_str(&format!(
            "  - {{dest: /etc/bench/f{i:03}.secret, key: g{:03}/k{:02}}}\n",
            i % 10,
            i % 100
        ));
    }
    y
}

fn bench(c: &mut Criterion) {
    for n in [1000, 10000] {
        let json = vault_json(n);
        c.bench_function(&format!("vault index, all {n} keys"), |b| {
            b.iter(|| {
                Vault::from_plaintext(black_box(json.as_bytes()), VaultInfo::default()).unwrap()
            })
        });
        let keys: Vec<phx_hook::types::KeyPath> = (0..10)
            .map(|i| format!("g{i:03}/k{i:02}").parse().unwrap())
            .collect();
        let wanted = Wanted::new(keys.iter());
        c.bench_function(&format!("vault index, 10 of {n} keys"), |b| {
            b.iter(|| {
                Vault::from_plaintext_for(black_box(json.as_bytes()), VaultInfo::default(), &wanted)
                    .unwrap()
            })
        });
    }
    let text = manifest(100);
    let dir = Utf8Path::new("/nonexistent");
    let path = Utf8Path::new("/m/201.yaml");
    let vmid = "201".parse().unwrap();
    c.bench_function("manifest parse, 100 files", |b| {
        b.iter(|| phx_hook::manifest::parse(dir, path, vmid, black_box(&text)).unwrap())
    });
    let m = phx_hook::manifest::parse(dir, path, vmid, &text).unwrap();
    let v = Vault::from_plaintext(vault_json(1000).as_bytes(), VaultInfo::default()).unwrap();
    c.bench_function("plan build, 100 files", |b| {
        b.iter(|| phx_hook::plan::build(black_box(&m), &v).unwrap())
    });
    let mut cfg_text = String::new();
    for i in 0..20000 {
        cfg_text.push_str(&format!(
            "setting_{i} = value-{i}\nlisten_port = {}\nDB_PASSWORD=\"S3cret-{i}\"\n",
            i % 65535
        ));
    }
    c.bench_function("scan text, 60,000 lines", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            phx_hook::scan::scan_text("bench.conf", None, black_box(&cfg_text), &mut out);
            out.len()
        })
    });
    if let Ok(fx) = std::env::var("PHX_BENCH_FIXTURES") {
        for alg in ["cv25519", "rsa3072"] {
            let cfg = phx_hook::config::Config::load(Utf8Path::new(&format!(
                "{fx}/node-1000-{alg}/phx-hook.yaml"
            )))
            .unwrap();
            c.bench_function(
                &format!("vault open (read key + decrypt + index), 1,000 keys, {alg}"),
                |b| b.iter(|| Vault::open_with(&cfg, phx_hook::vault::Rollback::Ignore).unwrap()),
            );
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
