//! Every experiment under `../shared/data/chaos/` is read: what maps is converted into a spec
//! that passes validation, and what does not is named; an experiment with nothing to inject is
//! refused.

use std::path::{Path, PathBuf};

use super::*;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/chaos")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn import(doc: &Value) -> Option<Result<Imported, NothingMaps>> {
    match detect(doc)? {
        Format::ChaosToolkit => Some(chaos_toolkit(doc)),
        Format::Fis => Some(fis(doc)),
        Format::Native => None,
    }
}

#[test]
fn every_shared_experiment_is_read_and_each_part_is_mapped_or_named() {
    let root = data();
    if !root.exists() {
        eprintln!("{} is not here; skipping", root.display());
        return;
    }
    let mut files = Vec::new();
    json_files(&root, &mut files);
    files.sort();
    let (mut experiments, mut imported, mut refused) = (0, 0, 0);
    for f in &files {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        // SSM documents beside FIS templates are scripts, not experiments.
        if doc.get("schemaVersion").is_some() {
            assert!(detect(&doc).is_none(), "{} is an SSM document", f.display());
            continue;
        }
        experiments += 1;
        let result = import(&doc).unwrap_or_else(|| panic!("{}: format not recognised", f.display()));
        match result {
            Ok(i) => {
                imported += 1;
                assert_eq!(
                    i.spec.problems(&[]).iter().filter(|p| !p.pointer.contains("steady_state")).count(),
                    0,
                    "{}: {:?}",
                    f.display(),
                    i.spec.problems(&[])
                );
                assert!(!i.mapped.is_empty(), "{}", f.display());
            }
            Err(n) => {
                refused += 1;
                assert!(!n.unmapped.is_empty(), "{}: refused without saying why", f.display());
            }
        }
    }
    println!("{experiments} experiments: {imported} imported, {refused} refused (nothing to inject)");
    // 7 Chaos Toolkit fixtures + 14 playground experiments + 23 FIS templates.
    assert_eq!(experiments, 44, "{files:?}");
    assert!(imported >= 10 && refused >= 10, "imported {imported}, refused {refused}");
}

fn read(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data().join(rel)).unwrap()).unwrap()
}

#[test]
fn the_known_cases_map_as_expected() {
    if !data().exists() {
        return;
    }
    let kill = chaos_toolkit(&read("playground/kubernetes-pack/kill-pods-experiment.json")).unwrap();
    assert_eq!(kill.spec.fault.kind, FaultKind::KillPod.into());
    assert!(kill.unmapped.iter().any(|u| u.contains("configuration")), "{:?}", kill.unmapped);
    let drain = chaos_toolkit(&read("playground/kubernetes-pack/drain-node-experiment.json"));
    assert!(drain.is_err(), "draining nodes has no counterpart");
    assert!(chaos_toolkit(&read("chaostoolkit/invalid-plan.json")).is_err());
    let old = chaos_toolkit(&read("chaostoolkit/well-formed-experiment.json"));
    assert!(old.as_ref().is_err_and(|n| n.unmapped.iter().any(|u| u.contains("pre-1.0"))), "{old:?}");
    let ec2 = fis(&read("fis/ec2-instances-terminate/ec2-instances-terminate-template.json")).unwrap();
    assert_eq!((ec2.spec.fault.kind, ec2.spec.blast_radius.percent), (FaultKind::KillPod.into(), Some(25)));
    assert!(ec2.mapped.iter().any(|m| m.contains("stopConditions: none")));
    let ssm_only = fis(&read("fis/msk-broker-reboot/msk-broker-reboot-experiment-template.json"));
    assert!(ssm_only.is_err_and(|n| n.unmapped.iter().any(|u| u.contains("SSM"))));
}

#[test]
fn iso_durations_and_slugs() {
    assert_eq!(iso_seconds("PT10M"), Some(600));
    assert_eq!(iso_seconds("PT1H30S"), Some(3630));
    assert_eq!(iso_seconds("P1D"), None);
    assert_eq!(slug("My app is resilient to pod death!", "x"), "my-app-is-resilient-to-pod-death");
    assert_eq!(slug("!!!", "fallback"), "fallback");
}
