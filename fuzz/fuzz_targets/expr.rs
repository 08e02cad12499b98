//! `AssignUserIDExpr`/`AssignGroupIDExpr` strings (`itkd_config::expr::StringExpr`): any
//! text parses or is refused without a panic; a parsed expression prints as text that
//! parses back to itself; evaluation is deterministic and is exactly its pieces joined,
//! with unset variables empty.
//!
//! Input: the expression, then optionally NUL and values for the variables, `\n`-separated
//! (HTTP_HOST, SERVER_NAME, REQUEST_URI, then reqenv/ENV values looked up by name).
#![no_main]

use itkd_config::expr::{Piece, StringExpr, Var};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, values) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let values = String::from_utf8_lossy(values);
    let mut values = values.split('\n');
    let host = values.next().map(str::to_owned);
    let server = values.next().map(str::to_owned);
    let uri = values.next().map(str::to_owned);
    let env: Vec<String> = values.map(str::to_owned).collect();
    let lookup = |v: &Var| match v {
        Var::HttpHost => host.clone(),
        Var::ServerName => server.clone(),
        Var::RequestUri => uri.clone(),
        // Deterministic but name-dependent: some names set, some not.
        Var::ReqEnv(n) | Var::Env(n) => {
            let i = n.bytes().map(usize::from).sum::<usize>();
            (!env.is_empty() && i % 3 != 0).then(|| env[i % env.len()].clone())
        }
    };

    let Ok(expr) = StringExpr::parse(text) else {
        return;
    };
    assert!(!expr.pieces.is_empty());
    let printed = expr.to_string();
    assert_eq!(
        StringExpr::parse(&printed).as_ref(),
        Ok(&expr),
        "{text:?} printed {printed:?}"
    );

    let value = expr.eval(lookup);
    assert_eq!(value, expr.eval(lookup), "{text:?}");
    let joined: String = expr
        .pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.clone(),
            Piece::Var(v) => lookup(v).unwrap_or_default(),
        })
        .collect();
    assert_eq!(value, joined, "{text:?}");
});
