//! A gRPC service config's retry settings (gRFC A6), read from its JSON and checked as A6
//! says: `methodConfig` entries with their `timeout`, `retryPolicy` or `hedgingPolicy`, and
//! `retryThrottling`. A config that breaks any rule is refused whole (gRFC A21: no field of it
//! is used), with an error that names where; fields that A6 does not define are ignored.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value};
use tonic::Code;

use super::classify::GRPC_CODES;
use super::methods::PathIndex;
use crate::error::{ConfigError, ConfigProblem};

/// The client's own cap on attempts: A6 treats a larger `maxAttempts` as 5.
const MAX_ATTEMPTS: u64 = 5;

/// A checked service config.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceConfig {
    /// Each named entry's settings.
    pub(crate) methods: Vec<MethodConfig>,
    /// Which entry serves a path: `/service/method`, `/service/` or `` (the default). Hashed
    /// with foldhash, as the scopes are: a routed call looks up to three paths.
    pub(crate) index: PathIndex,
    /// `retryThrottling`: `maxTokens` and `tokenRatio`.
    pub(crate) throttling: Option<(u32, f64)>,
}

/// One `methodConfig` entry's settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MethodConfig {
    pub(crate) timeout: Option<Duration>,
    pub(crate) policy: Policy,
}

/// What an entry says of retrying: nothing (no retries, as A6 has it), a retry policy or a
/// hedging policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Policy {
    None,
    Retry {
        max_attempts: u32,
        initial: Duration,
        max: Duration,
        multiplier: f64,
        codes: Vec<Code>,
    },
    Hedging {
        max_attempts: u32,
        delay: Duration,
        non_fatal: Vec<Code>,
    },
}

/// Refuses the config: `at` names the place, `why` the rule.
fn invalid(at: &str, why: impl std::fmt::Display) -> ConfigError {
    let why = format!("{at} {why}").into_boxed_str();
    ConfigError::new("service_config", ConfigProblem::ServiceConfig(why))
}

impl ServiceConfig {
    /// Reads and checks `json`.
    pub(crate) fn parse(json: &str) -> Result<Self, ConfigError> {
        let document: Value =
            serde_json::from_str(json).map_err(|err| invalid("the document", err))?;
        let Value::Object(root) = document else {
            return Err(invalid("the document", "is not a JSON object"));
        };
        let mut config = ServiceConfig {
            methods: Vec::new(),
            index: HashMap::default(),
            throttling: throttling(&root)?,
        };
        let entries = match root.get("methodConfig") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(entries)) => &entries[..],
            Some(_) => return Err(invalid("methodConfig", "is not a list")),
        };
        for (n, entry) in entries.iter().enumerate() {
            let at = format!("methodConfig[{n}]");
            let Value::Object(entry) = entry else {
                return Err(invalid(&at, "is not an object"));
            };
            let method = method_config(&at, entry)?;
            let number = config.methods.len();
            for path in names(&at, entry)? {
                if config.index.insert(path.clone(), number).is_some() {
                    let name = if path.is_empty() {
                        "the default"
                    } else {
                        &path
                    };
                    return Err(invalid(&at, format!("names {name} again")));
                }
            }
            config.methods.push(method);
        }
        Ok(config)
    }
}

/// The paths an entry names: `/service/method`, `/service/` (a whole service) or `` (the
/// default). An entry with no names names none (and is checked all the same).
fn names(at: &str, entry: &Map<String, Value>) -> Result<Vec<Box<str>>, ConfigError> {
    let names = match entry.get("name") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(names)) => names,
        Some(_) => return Err(invalid(&format!("{at}.name"), "is not a list")),
    };
    let mut paths = Vec::with_capacity(names.len());
    for (n, name) in names.iter().enumerate() {
        let at = format!("{at}.name[{n}]");
        let Value::Object(name) = name else {
            return Err(invalid(&at, "is not an object"));
        };
        let text = |field: &str| match name.get(field) {
            None | Some(Value::Null) => Ok(""),
            Some(Value::String(text)) => Ok(text.as_str()),
            Some(_) => Err(invalid(&format!("{at}.{field}"), "is not a string")),
        };
        let (service, method) = (text("service")?, text("method")?);
        paths.push(match (service, method) {
            ("", "") => "".into(),
            ("", _) => return Err(invalid(&at, "has a method but no service")),
            (service, "") => format!("/{service}/").into(),
            (service, method) => format!("/{service}/{method}").into(),
        });
    }
    Ok(paths)
}

fn method_config(at: &str, entry: &Map<String, Value>) -> Result<MethodConfig, ConfigError> {
    let timeout = match entry.get("timeout") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let at = format!("{at}.timeout");
            let timeout = duration(&at, value)?;
            if timeout.is_zero() {
                return Err(invalid(&at, "must be longer than zero"));
            }
            Some(timeout)
        }
    };
    let retry = entry.get("retryPolicy").filter(|v| !v.is_null());
    let hedging = entry.get("hedgingPolicy").filter(|v| !v.is_null());
    let policy = match (retry, hedging) {
        (Some(_), Some(_)) => {
            return Err(invalid(at, "has both a retryPolicy and a hedgingPolicy"));
        }
        (Some(policy), None) => retry_policy(&format!("{at}.retryPolicy"), policy)?,
        (None, Some(policy)) => hedging_policy(&format!("{at}.hedgingPolicy"), policy)?,
        (None, None) => Policy::None,
    };
    Ok(MethodConfig { timeout, policy })
}

fn object<'a>(at: &str, value: &'a Value) -> Result<&'a Map<String, Value>, ConfigError> {
    value
        .as_object()
        .ok_or_else(|| invalid(at, "is not an object"))
}

/// `maxAttempts`: an integer above 1, at most 5 (A6: more is taken as 5, not refused).
fn max_attempts(at: &str, policy: &Map<String, Value>) -> Result<u32, ConfigError> {
    let at = format!("{at}.maxAttempts");
    match policy.get("maxAttempts").and_then(Value::as_u64) {
        Some(n) if n > 1 => Ok(n.min(MAX_ATTEMPTS) as u32),
        _ => Err(invalid(&at, "must be an integer greater than 1")),
    }
}

fn retry_policy(at: &str, value: &Value) -> Result<Policy, ConfigError> {
    let policy = object(at, value)?;
    let max_attempts = max_attempts(at, policy)?;
    let positive = |field: &str| {
        let at = format!("{at}.{field}");
        let value = policy
            .get(field)
            .ok_or_else(|| invalid(&at, "is missing"))?;
        match duration(&at, value)? {
            zero if zero.is_zero() => Err(invalid(&at, "must be longer than zero")),
            delay => Ok(delay),
        }
    };
    let (initial, max) = (positive("initialBackoff")?, positive("maxBackoff")?);
    let multiplier = match policy.get("backoffMultiplier").and_then(Value::as_f64) {
        // A6 allows a backoff that shrinks; this crate's backoffs only grow.
        Some(m) if (0.0..1.0).contains(&m) && m > 0.0 => {
            let at = format!("{at}.backoffMultiplier");
            return Err(invalid(
                &at,
                "under 1 (a backoff that shrinks) is not supported",
            ));
        }
        Some(m) if m > 0.0 && m.is_finite() => m,
        _ => {
            let at = format!("{at}.backoffMultiplier");
            return Err(invalid(&at, "must be a number greater than 0"));
        }
    };
    let at = format!("{at}.retryableStatusCodes");
    let codes = match policy.get("retryableStatusCodes") {
        Some(list) => codes(&at, list)?,
        None => return Err(invalid(&at, "is missing")),
    };
    if codes.is_empty() {
        return Err(invalid(&at, "must not be empty"));
    }
    Ok(Policy::Retry {
        max_attempts,
        initial,
        max,
        multiplier,
        codes,
    })
}

fn hedging_policy(at: &str, value: &Value) -> Result<Policy, ConfigError> {
    let policy = object(at, value)?;
    let max_attempts = max_attempts(at, policy)?;
    let delay = match policy.get("hedgingDelay") {
        None | Some(Value::Null) => Duration::ZERO,
        Some(value) => duration(&format!("{at}.hedgingDelay"), value)?,
    };
    let non_fatal = match policy.get("nonFatalStatusCodes") {
        None | Some(Value::Null) => Vec::new(),
        Some(list) => codes(&format!("{at}.nonFatalStatusCodes"), list)?,
    };
    Ok(Policy::Hedging {
        max_attempts,
        delay,
        non_fatal,
    })
}

fn throttling(root: &Map<String, Value>) -> Result<Option<(u32, f64)>, ConfigError> {
    let at = "retryThrottling";
    let throttling = match root.get(at) {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => object(at, value)?,
    };
    let max_tokens = match throttling.get("maxTokens").and_then(Value::as_u64) {
        Some(n @ 1..=1000) => n as u32,
        _ => {
            let at = "retryThrottling.maxTokens";
            return Err(invalid(at, "must be an integer from 1 to 1000"));
        }
    };
    match throttling.get("tokenRatio").and_then(Value::as_f64) {
        // Thousandths are what count (A6): a ratio under 0.001 counts for nothing.
        Some(ratio) if ratio >= 0.001 && ratio.is_finite() => Ok(Some((max_tokens, ratio))),
        _ => Err(invalid(
            "retryThrottling.tokenRatio",
            "must be a number of at least 0.001",
        )),
    }
}

/// A proto3 JSON duration: decimal seconds and an `s`, the number a JSON number (`"0.1s"`, not
/// `".1s"`), at most nine decimals.
fn duration(at: &str, value: &Value) -> Result<Duration, ConfigError> {
    let bad = || invalid(at, "must be a duration such as \"1.5s\"");
    let text = value.as_str().ok_or_else(bad)?;
    let number = text.strip_suffix('s').ok_or_else(bad)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let fraction_ok = !number.contains('.') || (!fraction.is_empty() && fraction.len() <= 9);
    if whole.is_empty() || !digits(whole) || !digits(fraction) || !fraction_ok {
        return Err(bad());
    }
    let seconds: u64 = whole.parse().map_err(|_| bad())?;
    let nanos: u32 = format!("{fraction:0<9}").parse().map_err(|_| bad())?;
    Ok(Duration::new(seconds, nanos))
}

/// A list of status codes, each a number (`14`) or a name in any case (`"UNAVAILABLE"`).
fn codes(at: &str, list: &Value) -> Result<Vec<Code>, ConfigError> {
    let list = list
        .as_array()
        .ok_or_else(|| invalid(at, "is not a list"))?;
    list.iter()
        .map(|code| {
            let found = match code {
                Value::Number(n) => n.as_u64().filter(|n| *n <= 16).map(|n| n as i32),
                Value::String(name) => GRPC_CODES
                    .iter()
                    .position(|known| known.eq_ignore_ascii_case(name))
                    .map(|n| n as i32),
                _ => None,
            };
            found
                .map(Code::from_i32)
                .ok_or_else(|| invalid(at, format!("holds {code}, not a gRPC status code")))
        })
        .collect()
}

#[cfg(test)]
mod tests;
