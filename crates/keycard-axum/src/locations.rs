//! Finding a token in a request (placeholder: replaced by the full FJE-exact parser).

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderName, header::CONTENT_TYPE};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup<'a> {
    Found(Cow<'a, str>),
    Missing(String),
    Malformed(String),
}

pub(crate) fn from_header<'a>(headers: &'a HeaderMap, name: &HeaderName, kind: &str) -> Lookup<'a> {
    let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) else {
        return Lookup::Missing(format!("Missing {name} Header"));
    };
    match value.split_once(' ') {
        Some((k, t)) if k == kind => Lookup::Found(Cow::Borrowed(t)),
        _ => Lookup::Malformed(format!("Bad {name} header. Expected '{name}: {kind} <JWT>'")),
    }
}

pub(crate) fn from_cookie<'a>(headers: &'a HeaderMap, cookie_name: &str) -> Lookup<'a> {
    for value in headers.get_all(axum::http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == cookie_name
            {
                return Lookup::Found(Cow::Borrowed(v));
            }
        }
    }
    Lookup::Missing(format!("Missing cookie \"{cookie_name}\""))
}

pub(crate) fn from_query<'a>(query: Option<&'a str>, param: &str, prefix: &str) -> Lookup<'a> {
    for pair in query.unwrap_or("").split('&') {
        if let Some((k, v)) = pair.split_once('=')
            && k == param
        {
            return match v.strip_prefix(prefix) {
                Some(t) => Lookup::Found(Cow::Borrowed(t)),
                None => Lookup::Malformed(format!(
                    "Invalid value for query parameter '{param}'. Expected the value to start with '{prefix}'"
                )),
            };
        }
    }
    Lookup::Missing(format!("Missing '{param}' query paramater"))
}

pub(crate) fn from_json(body: &[u8], is_json: bool, key: &str) -> Lookup<'static> {
    if !is_json {
        return Lookup::Missing("Invalid content-type. Must be application/json.".into());
    }
    match serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| v.get(key).cloned()) {
        Some(serde_json::Value::String(s)) => Lookup::Found(Cow::Owned(s)),
        _ => Lookup::Missing(format!("Missing \"{key}\" key in json data.")),
    }
}

pub(crate) fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"))
}

pub(crate) fn csrf_from_header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn csrf_matches(claim: &str, presented: &str) -> bool {
    claim == presented
}

pub(crate) fn missing_message(tried: &[(&str, String)]) -> String {
    match tried {
        [(_, msg)] => msg.clone(),
        _ => {
            let names: Vec<&str> = tried.iter().map(|(n, _)| *n).collect();
            let msgs: Vec<&str> = tried.iter().map(|(_, m)| m.as_str()).collect();
            format!("Missing JWT in {} ({})", names.join(" or "), msgs.join("; "))
        }
    }
}
