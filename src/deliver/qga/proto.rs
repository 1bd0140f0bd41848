//! Guest-agent requests and replies as phx-hook uses them: `guest-ping`, `guest-exec`
//! (with the content as base64 `input-data`, built in a buffer that is wiped) and
//! `guest-exec-status`.

use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

/// `{"execute":"guest-ping"}`.
pub(crate) fn ping() -> Vec<u8> {
    b"{\"execute\":\"guest-ping\"}\n".to_vec()
}

/// `guest-exec` of `path` with `args`, `input` on stdin, output captured when `capture`
/// (phx-hook's own programs; not `after` commands, whose output nobody reads and which
/// could be up to the agent's 16 MiB). The request holds the input (base64), so it lives
/// in a wiped buffer.
pub(crate) fn exec(
    path: &str,
    args: &[&str],
    input: Option<&[u8]>,
    capture: bool,
) -> Zeroizing<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let in_len = input.map_or(0, |i| i.len().div_ceil(3) * 4);
    let mut req = Zeroizing::new(Vec::with_capacity(
        256 + args.iter().map(|a| a.len() + 4).sum::<usize>() + in_len,
    ));
    req.extend_from_slice(b"{\"execute\":\"guest-exec\",\"arguments\":{\"path\":");
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *req, path);
    req.extend_from_slice(b",\"arg\":");
    let _ = serde_json::to_writer(&mut *req, args);
    if capture {
        req.extend_from_slice(b",\"capture-output\":true");
    }
    if let Some(input) = input {
        req.extend_from_slice(b",\"input-data\":\"");
        let start = req.len();
        req.resize(start + in_len, 0);
        let n = b64.encode_slice(input, &mut req[start..]).unwrap_or(0);
        req.truncate(start + n);
        req.push(b'"');
    }
    req.extend_from_slice(b"}}\n");
    req
}

/// `guest-exec-status` for `pid`.
pub(crate) fn exec_status(pid: i64) -> Vec<u8> {
    format!("{{\"execute\":\"guest-exec-status\",\"arguments\":{{\"pid\":{pid}}}}}\n").into_bytes()
}

/// A `guest-exec` reply.
#[derive(Deserialize)]
pub(crate) struct Started {
    pub(crate) pid: i64,
}

/// A `guest-exec-status` reply (fields phx-hook does not use are ignored).
#[derive(Deserialize)]
pub(crate) struct Status {
    exited: bool,
    #[serde(default)]
    exitcode: Option<i64>,
    #[serde(default)]
    signal: Option<i64>,
    #[serde(rename = "out-data", default)]
    out: Option<String>,
    #[serde(rename = "err-data", default)]
    err: Option<String>,
}

/// A finished process, from a `guest-exec-status` reply; `None` while it runs.
pub(crate) struct Exited {
    pub(crate) exitcode: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) out: Vec<u8>,
    pub(crate) err: Vec<u8>,
}

pub(crate) fn exited(v: Status) -> Option<Exited> {
    if !v.exited {
        return None;
    }
    let data = |s: Option<String>| {
        s.and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .unwrap_or_default()
    };
    let code = |c: Option<i64>| c.map(|c| i32::try_from(c).unwrap_or(i32::MAX));
    Some(Exited {
        exitcode: code(v.exitcode),
        signal: code(v.signal),
        out: data(v.out),
        err: data(v.err),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_request_is_json_with_base64_input() {
        let req = exec(
            "/bin/sh",
            &["-c", "cat > \"$1\"", "x"],
            Some(b"hello\0\xff"),
            true,
        );
        let v: serde_json::Value = serde_json::from_slice(&req).unwrap();
        assert_eq!(v["execute"], "guest-exec");
        assert_eq!(v["arguments"]["arg"][1], "cat > \"$1\"");
        assert_eq!(v["arguments"]["input-data"], "aGVsbG8A/w==");
        assert_eq!(v["arguments"]["capture-output"], true);
        assert!(req.ends_with(b"}}\n"));
        let v: serde_json::Value = serde_json::from_slice(&exec("true", &[], None, false)).unwrap();
        assert!(v["arguments"].get("input-data").is_none());
        assert!(v["arguments"].get("capture-output").is_none());
    }

    fn status(json: &str) -> Status {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn exit_status_parsing() {
        let e = exited(status(
            r#"{"exited": true, "exitcode": 3, "out-data": "b3V0Cg==", "err-data": "ZXJyCg==", "extra": [1]}"#,
        ))
        .unwrap();
        assert_eq!((e.exitcode, e.signal), (Some(3), None));
        assert_eq!(e.out, b"out\n");
        assert!(exited(status(r#"{"exited": false}"#)).is_none());
        let e = exited(status(r#"{"exited": true, "signal": 9}"#)).unwrap();
        assert_eq!((e.exitcode, e.signal), (None, Some(9)));
        let e = exited(status(r#"{"exited": true, "exitcode": 99999999999}"#)).unwrap();
        assert_eq!(e.exitcode, Some(i32::MAX));
        assert!(serde_json::from_str::<Status>(r#"{"exitcode": 0}"#).is_err());
    }
}
