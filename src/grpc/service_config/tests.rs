//! A6's examples read as A6 says, and every rule it states refuses the whole config.

use super::*;

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A6's retry, hedging and throttling examples, in one config, with a default entry.
const A6: &str = r#"{
    "loadBalancingConfig": [{ "round_robin": {} }],
    "methodConfig": [
        { "name": [{}], "timeout": "1.5s" },
        {
            "name": [{ "service": "pkg.Svc" }, { "service": "pkg.Other", "method": null }],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.1s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"]
            }
        },
        {
            "name": [{ "service": "pkg.Svc", "method": "Get" }],
            "hedgingPolicy": {
                "maxAttempts": 4,
                "hedgingDelay": "0.5s",
                "nonFatalStatusCodes": ["UNAVAILABLE", "INTERNAL", "ABORTED"]
            }
        }
    ],
    "retryThrottling": { "maxTokens": 10, "tokenRatio": 0.1 }
}"#;

#[test]
fn a6s_examples_are_read_as_written() {
    let config = ServiceConfig::parse(A6).unwrap();
    assert_eq!(config.throttling, Some((10, 0.1)));
    assert_eq!(
        config.methods[0],
        MethodConfig {
            timeout: Some(ms(1500)),
            policy: Policy::None
        }
    );
    assert_eq!(
        config.methods[1].policy,
        Policy::Retry {
            max_attempts: 4,
            initial: ms(100),
            max: ms(1000),
            multiplier: 2.0,
            codes: vec![Code::Unavailable],
        }
    );
    assert_eq!(
        config.methods[2].policy,
        Policy::Hedging {
            max_attempts: 4,
            delay: ms(500),
            non_fatal: vec![Code::Unavailable, Code::Internal, Code::Aborted],
        }
    );
    let index = |path: &str| config.index.get(path).copied();
    assert_eq!(index(""), Some(0));
    assert_eq!(index("/pkg.Svc/"), Some(1));
    assert_eq!(
        index("/pkg.Other/"),
        Some(1),
        "a null method is the whole service"
    );
    assert_eq!(index("/pkg.Svc/Get"), Some(2));
}

#[test]
fn codes_are_numbers_or_names_in_any_case_and_attempts_stop_at_five() {
    let config = ServiceConfig::parse(
        r#"{ "methodConfig": [{ "name": [{ "service": "s" }], "retryPolicy": {
            "maxAttempts": 9, "initialBackoff": "0.000000001s", "maxBackoff": "3s",
            "backoffMultiplier": 1.5, "retryableStatusCodes": [14, "unavailable", "Resource_Exhausted"]
        } }] }"#,
    )
    .unwrap();
    assert_eq!(
        config.methods[0].policy,
        Policy::Retry {
            max_attempts: 5,
            initial: Duration::from_nanos(1),
            max: Duration::from_secs(3),
            multiplier: 1.5,
            codes: vec![
                Code::Unavailable,
                Code::Unavailable,
                Code::ResourceExhausted
            ],
        }
    );
    let hedged = ServiceConfig::parse(
        r#"{ "methodConfig": [{ "name": [{ "service": "s" }], "hedgingPolicy": { "maxAttempts": 3 } }] }"#,
    )
    .unwrap();
    assert_eq!(
        hedged.methods[0].policy,
        Policy::Hedging {
            max_attempts: 3,
            delay: Duration::ZERO,
            non_fatal: vec![],
        }
    );
}

/// Every config A6 (and A21) calls invalid is refused whole, saying where.
#[test]
fn every_rule_a6_states_refuses_the_config() {
    let retry = |policy: &str| {
        format!(
            r#"{{ "methodConfig": [{{ "name": [{{ "service": "s" }}], "retryPolicy": {policy} }}] }}"#
        )
    };
    let good = r#""maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "2s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]"#;
    let without = |field: &str| {
        let kept: Vec<&str> = good.split(", ").filter(|f| !f.contains(field)).collect();
        retry(&format!("{{ {} }}", kept.join(", ")))
    };
    let with = |field: &str, value: &str| {
        let kept: Vec<String> = good
            .split(", ")
            .map(|f| {
                if f.contains(field) {
                    format!("\"{field}\": {value}")
                } else {
                    f.to_string()
                }
            })
            .collect();
        retry(&format!("{{ {} }}", kept.join(", ")))
    };
    let cases: Vec<(String, &str)> = vec![
        ("[]".into(), "the document is not a JSON object"),
        ("{ \"methodConfig\": [".into(), "the document"),
        (with("maxAttempts", "1"), "maxAttempts must be an integer greater than 1"),
        (with("maxAttempts", "0"), "maxAttempts must be an integer greater than 1"),
        (with("maxAttempts", "2.5"), "maxAttempts must be an integer greater than 1"),
        (without("maxAttempts"), "maxAttempts must be an integer greater than 1"),
        (with("initialBackoff", "\"0s\""), "initialBackoff must be longer than zero"),
        (with("initialBackoff", "\"1\""), "initialBackoff must be a duration"),
        (with("initialBackoff", "\".1s\""), "initialBackoff must be a duration"),
        (with("initialBackoff", "\"0.1234567891s\""), "initialBackoff must be a duration"),
        (without("initialBackoff"), "initialBackoff is missing"),
        (with("maxBackoff", "\"0s\""), "maxBackoff must be longer than zero"),
        (with("backoffMultiplier", "0"), "backoffMultiplier must be a number greater than 0"),
        (with("backoffMultiplier", "-1"), "backoffMultiplier must be a number greater than 0"),
        (with("backoffMultiplier", "0.5"), "backoffMultiplier under 1 (a backoff that shrinks) is not supported"),
        (with("retryableStatusCodes", "[]"), "retryableStatusCodes must not be empty"),
        (without("retryableStatusCodes"), "retryableStatusCodes is missing"),
        (with("retryableStatusCodes", "[\"NOT_A_CODE\"]"), "holds \"NOT_A_CODE\", not a gRPC status code"),
        (with("retryableStatusCodes", "[17]"), "holds 17, not a gRPC status code"),
        (
            format!(
                r#"{{ "methodConfig": [{{ "name": [{{ "service": "s" }}], "retryPolicy": {{ {good} }}, "hedgingPolicy": {{ "maxAttempts": 2 }} }}] }}"#
            ),
            "has both a retryPolicy and a hedgingPolicy",
        ),
        (
            r#"{ "methodConfig": [{ "name": [{ "service": "s" }], "hedgingPolicy": { "maxAttempts": 1 } }] }"#.into(),
            "hedgingPolicy.maxAttempts must be an integer greater than 1",
        ),
        (
            r#"{ "methodConfig": [{ "name": [{ "service": "s" }], "hedgingPolicy": { "maxAttempts": 2, "hedgingDelay": "soon" } }] }"#.into(),
            "hedgingDelay must be a duration",
        ),
        (r#"{ "retryThrottling": { "maxTokens": 0, "tokenRatio": 0.1 } }"#.into(), "maxTokens must be an integer from 1 to 1000"),
        (r#"{ "retryThrottling": { "maxTokens": 1001, "tokenRatio": 0.1 } }"#.into(), "maxTokens must be an integer from 1 to 1000"),
        (r#"{ "retryThrottling": { "maxTokens": 10, "tokenRatio": 0 } }"#.into(), "tokenRatio must be a number of at least 0.001"),
        (r#"{ "retryThrottling": { "maxTokens": 10, "tokenRatio": -0.1 } }"#.into(), "tokenRatio must be a number of at least 0.001"),
        (r#"{ "retryThrottling": { "maxTokens": 10 } }"#.into(), "tokenRatio must be a number of at least 0.001"),
        (r#"{ "methodConfig": [{ "name": [{ "method": "Get" }] }] }"#.into(), "has a method but no service"),
        (
            r#"{ "methodConfig": [{ "name": [{ "service": "s" }] }, { "name": [{ "service": "s" }] }] }"#.into(),
            "methodConfig[1] names /s/ again",
        ),
        (r#"{ "methodConfig": [{ "name": [{}] }, { "name": [{}] }] }"#.into(), "names the default again"),
        (r#"{ "methodConfig": [{ "name": [{ "service": "s" }], "timeout": "0s" }] }"#.into(), "timeout must be longer than zero"),
        // A nameless entry names nothing, and is checked all the same.
        (r#"{ "methodConfig": [{ "retryPolicy": { "maxAttempts": 1 } }] }"#.into(), "maxAttempts must be an integer greater than 1"),
    ];
    for (json, says) in cases {
        let err = ServiceConfig::parse(&json).unwrap_err();
        assert_eq!(err.field(), "service_config");
        assert!(err.to_string().contains(says), "{json}\n{err}\nnot: {says}");
    }
}

#[test]
fn what_a6_does_not_define_is_ignored_and_nameless_entries_name_nothing() {
    let config = ServiceConfig::parse(
        r#"{ "healthCheckConfig": {}, "methodConfig": [
            { "retryPolicy": { "maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 1, "retryableStatusCodes": [14] } },
            { "name": [], "waitForReady": true, "maxRequestMessageBytes": 1024 }
        ] }"#,
    )
    .unwrap();
    // Both entries are read and checked (the first's policy is kept), and neither is found for
    // any method, having no name.
    assert_eq!(config.methods.len(), 2);
    assert!(matches!(config.methods[0].policy, Policy::Retry { .. }));
    assert!(matches!(config.methods[1].policy, Policy::None));
    assert!(config.index.is_empty());
    assert_eq!(config.throttling, None);
}
