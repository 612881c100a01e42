//! ENUM / SET element lists as SQL writes them: `enum('a','b''c',"d")`. TiCDC's canal-json
//! `mysqlType` with `content-compatible=true` carries a column's full type this way, and a
//! `CREATE TABLE` / `ALTER TABLE` query declares it so.
//!
//! Invariant: a list parses only when complete (every element quoted, closed by `)`); an
//! empty list (`enum()`) is not a list.

/// The elements of a full ENUM or SET type text (`enum('a','b')`, any case, optional
/// trailing text such as a charset); `None` for any other type or a malformed list.
pub fn elems_of_type(ty: &str) -> Option<Vec<String>> {
    let t = ty.trim_start();
    let lower = t.get(..4).map(str::to_ascii_lowercase);
    let rest = match lower.as_deref() {
        Some("enum") => &t[4..],
        Some("set(") | Some("set ") => &t[3..],
        _ => return None,
    };
    parse_list(rest.trim_start().strip_prefix('(')?)
}

/// Parses `'a','b''c', "d")` (the text after the opening parenthesis) into its elements:
/// quotes `'` or `"`, a doubled quote or a backslash escape inside.
pub fn parse_list(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        let q = it.next()?;
        if q != '\'' && q != '"' {
            return None;
        }
        let mut e = String::new();
        loop {
            match it.next()? {
                '\\' => e.push(unescape(it.next()?)),
                c if c == q => {
                    if it.peek() == Some(&q) {
                        it.next();
                        e.push(q);
                    } else {
                        break;
                    }
                }
                c => e.push(c),
            }
        }
        out.push(e);
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        match it.next()? {
            ',' => continue,
            ')' => return Some(out),
            _ => return None,
        }
    }
}

fn unescape(c: char) -> char {
    match c {
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        '0' => '\0',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_types_give_their_elements() {
        assert_eq!(
            elems_of_type("enum('small','a,b','x\"y','中')").unwrap(),
            vec!["small", "a,b", "x\"y", "中"]
        );
        assert_eq!(elems_of_type("SET('a','b''c')").unwrap(), vec!["a", "b'c"]);
        assert_eq!(elems_of_type("enum"), None);
        assert_eq!(elems_of_type("enum()"), None);
        assert_eq!(elems_of_type("settings('a')"), None);
        assert_eq!(elems_of_type("varchar(10)"), None);
    }
}
