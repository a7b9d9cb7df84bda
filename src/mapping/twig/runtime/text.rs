//! PHP's string functions as Twig's filters call them: escaping strategies, `sprintf`,
//! `number_format`, `strtr`, `explode`, `strip_tags`, `ucwords`-style titles, `trim` with character
//! masks, URL encoding, and PCRE patterns (`/…/flags`) read into Rust regexes.

use minijinja::Error;
use minijinja::value::Value;

use super::{error, to_php_string};

/// Twig's escapers (`escape('html')`, `'js'`, `'css'`, `'url'`, `'html_attr'`).
pub fn escape(text: &str, strategy: &str) -> Result<String, Error> {
    Ok(match strategy {
        "html" => html(text),
        "url" => rawurlencode(text),
        "js" => text
            .chars()
            .map(|c| match c {
                c if c.is_ascii_alphanumeric() || matches!(c, ',' | '.' | '_') => c.to_string(),
                '\u{08}' => "\\b".into(),
                '\t' => "\\t".into(),
                '\n' => "\\n".into(),
                '\u{0C}' => "\\f".into(),
                '\r' => "\\r".into(),
                '"' => "\\\"".into(),
                '\\' => "\\\\".into(),
                '/' => "\\/".into(),
                c => {
                    let mut units = [0u16; 2];
                    c.encode_utf16(&mut units).iter().map(|u| format!("\\u{u:04X}")).collect()
                }
            })
            .collect(),
        "css" => text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_string() } else { format!("\\{:X} ", c as u32) }).collect(),
        "html_attr" => text
            .chars()
            .map(|c| match c {
                c if c.is_ascii_alphanumeric() || matches!(c, ',' | '.' | '-' | '_') => c.to_string(),
                '"' => "&quot;".into(),
                '&' => "&amp;".into(),
                '<' => "&lt;".into(),
                '>' => "&gt;".into(),
                c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => "&#xFFFD;".into(),
                c if (c as u32) < 0x100 => format!("&#x{:02X};", c as u32),
                c => format!("&#x{:04X};", c as u32),
            })
            .collect(),
        other => return Err(error(format!("Invalid escaping strategy \"{other}\" (valid ones: html, js, url, css, html_attr)."))),
    })
}

/// `htmlspecialchars($text, ENT_QUOTES | ENT_SUBSTITUTE)`.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#039;"),
            c => out.push(c),
        }
    }
    out
}

/// `nl2br`: `<br />` before every line break (`\r\n`, `\n\r`, `\n`, `\r`).
pub fn nl2br(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' || c == '\r' {
            out.push_str("<br />");
            out.push(c);
            if let Some(&next) = chars.get(i + 1)
                && (next == '\n' || next == '\r')
                && next != c
            {
                out.push(next);
                i += 1;
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// `number_format`: rounded half away from zero, grouped by thousands.
pub fn number_format(n: f64, decimals: usize, point: &str, thousands: &str) -> String {
    let rounded = super::filters::php_round(n, decimals as i64);
    let text = format!("{:.*}", decimals, rounded.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push_str(thousands);
        }
        grouped.push(digit);
    }
    let sign = if rounded < 0.0 && (rounded * 10f64.powi(decimals as i32)).round() != 0.0 { "-" } else { "" };
    if decimals == 0 { format!("{sign}{grouped}") } else { format!("{sign}{grouped}{point}{fraction}") }
}

/// `strtr($text, $pairs)`: the longest matching key first, no re-scanning of what was replaced.
pub fn strtr(text: &str, pairs: &[(String, String)]) -> Result<String, Error> {
    let pairs: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| !k.is_empty()).collect();
    if pairs.is_empty() {
        return Ok(text.to_string());
    }
    // PHP tries the longest key first at each position: leftmost-longest, in one pass over the
    // text however many keys there are.
    let matcher = aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(pairs.iter().map(|(k, _)| k.as_str()))
        .map_err(|e| error(format!("replace: {e}")))?;
    let room = super::budget::room();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for found in matcher.find_iter(text) {
        out.push_str(&text[last..found.start()]);
        out.push_str(&pairs[found.pattern().as_usize()].1);
        last = found.end();
        if out.len() > room {
            return Err(super::budget::too_large());
        }
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Twig's `split`: `explode` with its limit, or chunks of `limit` characters for an empty delimiter.
pub fn split(text: &str, delimiter: &str, limit: Option<i64>) -> Result<Vec<String>, Error> {
    if delimiter.is_empty() {
        let size = limit.unwrap_or(1).max(1) as usize;
        let chars: Vec<char> = text.chars().collect();
        if chars.is_empty() {
            return Ok(vec![String::new()]);
        }
        return Ok(chars.chunks(size).map(|c| c.iter().collect()).collect());
    }
    let parts: Vec<String> = text.split(delimiter).map(str::to_string).collect();
    Ok(match limit {
        None => parts,
        Some(0) | Some(1) => vec![text.to_string()],
        Some(n) if n > 0 => text.splitn(n as usize, delimiter).map(str::to_string).collect(),
        Some(n) => {
            let keep = parts.len() as i64 + n;
            parts.into_iter().take(keep.max(0) as usize).collect()
        }
    })
}

/// PHP's `strip_tags`, keeping the tags named in `allowed` (`<b><i>` or `b,i`).
pub fn strip_tags(text: &str, allowed: &str) -> String {
    let allowed: Vec<String> = allowed
        .split(|c: char| c == '<' || c == '>' || c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| t.trim_start_matches('/').to_ascii_lowercase())
        .collect();
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // A `<` before whitespace starts no tag (PHP keeps it as text).
        if chars[i] != '<' || chars.get(i + 1).is_some_and(|c| c.is_whitespace()) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A comment, or a tag up to its closing `>` (quotes inside it do not close it).
        if chars[i..].starts_with(&['<', '!', '-', '-']) {
            let mut j = i + 4;
            while j < chars.len() && !chars[j..].starts_with(&['-', '-', '>']) {
                j += 1;
            }
            i = (j + 3).min(chars.len());
            continue;
        }
        let mut j = i + 1;
        let mut quote: Option<char> = None;
        while j < chars.len() {
            match (quote, chars[j]) {
                (None, '"' | '\'') => quote = Some(chars[j]),
                (Some(q), c) if c == q => quote = None,
                (None, '>') => break,
                _ => {}
            }
            j += 1;
        }
        let tag: String = chars[i..(j + 1).min(chars.len())].iter().collect();
        let name: String = tag
            .trim_start_matches('<')
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if !name.is_empty() && allowed.contains(&name) {
            out.push_str(&tag);
        }
        i = j + 1;
    }
    out
}

/// Twig's `title`: each word capitalised, the rest lower case.
pub fn title(text: &str) -> String {
    // mbstring's title case: a letter after a letter is lowered, any other is raised; characters
    // that are case-ignorable (an apostrophe, a period, a colon, modifier marks) do not end a word.
    let ignorable = |c: char| {
        matches!(c, '\'' | '.' | ':' | '^' | '`' | '\u{00A8}' | '\u{00AD}' | '\u{00AF}' | '\u{00B4}' | '\u{00B7}' | '\u{00B8}' | '\u{2019}')
    };
    let mut out = String::with_capacity(text.len());
    let mut in_word = false;
    for c in text.chars() {
        if in_word {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        if c.is_alphabetic() {
            in_word = true;
        } else if !ignorable(c) {
            in_word = false;
        }
    }
    out
}

/// `trim`/`ltrim`/`rtrim` with PHP's mask (`a..z` ranges) and Twig's `side`.
pub fn trim(text: &str, mask: Option<&str>, side: &str) -> Result<String, Error> {
    let set: Vec<char> = match mask {
        None => vec![' ', '\t', '\n', '\r', '\0', '\x0B'],
        Some(mask) => {
            let chars: Vec<char> = mask.chars().collect();
            let mut set = Vec::new();
            let mut i = 0;
            while i < chars.len() {
                if i + 3 < chars.len() + 1 && chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') && i + 3 < chars.len() {
                    let (a, b) = (chars[i], chars[i + 3]);
                    if a <= b {
                        set.extend((a..=b).filter(|_| true));
                    }
                    i += 4;
                } else {
                    set.push(chars[i]);
                    i += 1;
                }
            }
            set
        }
    };
    let is = |c: char| set.contains(&c);
    Ok(match side {
        "both" => text.trim_matches(is).to_string(),
        "left" => text.trim_start_matches(is).to_string(),
        "right" => text.trim_end_matches(is).to_string(),
        _ => return Err(error("Trimming side must be \"left\", \"right\" or \"both\".")),
    })
}

/// PHP's `rawurlencode` (RFC 3986: letters, digits and `-_.~` kept).
pub fn rawurlencode(text: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(text, KEEP).to_string()
}

/// `http_build_query($pairs, '', '&', PHP_QUERY_RFC3986)`, nested arrays as `a%5Bb%5D=c`.
pub fn build_query(pairs: &[(Value, Value)]) -> Result<String, Error> {
    let mut out = Vec::new();
    let mut stack: Vec<(String, Value)> =
        pairs.iter().rev().map(|(k, v)| Ok((to_php_string(k)?, v.clone()))).collect::<Result<_, Error>>()?;
    while let Some((key, value)) = stack.pop() {
        match super::array(&value) {
            Some(inner) => {
                for (k, v) in inner.into_iter().rev() {
                    stack.push((format!("{key}[{}]", to_php_string(&k)?), v));
                }
            }
            None if super::is_null(&value) => {}
            None => {
                let text = match value.kind() {
                    minijinja::value::ValueKind::Bool => {
                        if value.is_true() {
                            "1".into()
                        } else {
                            "0".into()
                        }
                    }
                    _ => to_php_string(&value)?,
                };
                out.push(format!("{}={}", rawurlencode(&key), rawurlencode(&text)));
            }
        }
    }
    Ok(out.join("&"))
}

/// PHP's `sprintf`: `%[argnum$][flags][width][.precision]specifier` with `b c d e E f F g G o s u x X %`.
pub fn sprintf(format: &str, args: &[Value]) -> Result<String, Error> {
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::new();
    let mut next = 0;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        i += 1;
        if chars.get(i) == Some(&'%') {
            out.push('%');
            i += 1;
            continue;
        }
        // argnum$
        let mut j = i;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        let mut argnum = None;
        if j > i && chars.get(j) == Some(&'$') {
            argnum = chars[i..j].iter().collect::<String>().parse::<usize>().ok();
            i = j + 1;
        }
        let (mut left, mut plus, mut pad) = (false, false, ' ');
        loop {
            match chars.get(i) {
                Some('-') => left = true,
                Some('+') => plus = true,
                Some('0') => pad = '0',
                Some(' ') => pad = ' ',
                Some('\'') => {
                    pad = *chars.get(i + 1).unwrap_or(&' ');
                    i += 1;
                }
                _ => break,
            }
            i += 1;
        }
        let width = decimal(&chars, &mut i);
        if width > i32::MAX as usize {
            return Err(error("sprintf(): Width must be greater than zero and less than 2147483647"));
        }
        let mut precision = None;
        if chars.get(i) == Some(&'.') {
            i += 1;
            let p = decimal(&chars, &mut i);
            if p > i32::MAX as usize {
                return Err(error("sprintf(): Precision must be greater than zero and less than 2147483647"));
            }
            precision = Some(p);
        }
        // The padding is charged before it is made.
        super::budget::check(width)?;
        let Some(&spec) = chars.get(i) else { return Err(error("sprintf(): Missing format specifier at end of string")) };
        i += 1;
        let index = argnum.map(|n| n.saturating_sub(1)).unwrap_or_else(|| {
            next += 1;
            next - 1
        });
        let arg = args.get(index).ok_or_else(|| error(format!("{} arguments are required, {} given", index + 2, args.len() + 1)))?;
        let number = || super::number(arg, "sprintf").map(|n| n.f());
        let int = || super::int_of(arg);
        let mut body = match spec {
            's' => {
                let text = to_php_string(arg)?;
                match precision {
                    Some(p) => text.chars().take(p).collect(),
                    None => text,
                }
            }
            'd' => {
                let n = int()?;
                if plus && n >= 0 { format!("+{n}") } else { n.to_string() }
            }
            'u' => (int()? as u64).to_string(),
            'f' | 'F' => {
                let n = number()?;
                // PHP truncates a float's precision to 53 digits.
                let text = format!("{:.*}", precision.unwrap_or(6).min(53), n);
                if plus && n >= 0.0 { format!("+{text}") } else { text }
            }
            'e' | 'E' => {
                let text = format!("{:.*e}", precision.unwrap_or(6).min(53), number()?);
                let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
                let exponent: i32 = exponent.parse().unwrap_or(0);
                let text = format!("{mantissa}e{}{exponent}", if exponent < 0 { "" } else { "+" });
                if spec == 'E' { text.to_uppercase() } else { text }
            }
            'g' | 'G' => crate::mapping::php::float_string(number()?),
            'x' => format!("{:x}", int()?),
            'X' => format!("{:X}", int()?),
            'o' => format!("{:o}", int()?),
            'b' => format!("{:b}", int()?),
            'c' => char::from_u32(int()? as u32).map(String::from).unwrap_or_default(),
            other => return Err(error(format!("sprintf(): Unknown format specifier \"{other}\""))),
        };
        let len = body.chars().count();
        if len < width {
            let fill: String = std::iter::repeat_n(pad, width - len).collect();
            body = if left {
                format!("{body}{}", if pad == '0' { " ".repeat(width - len) } else { fill })
            } else if pad == '0' && body.starts_with(['-', '+']) {
                format!("{}{fill}{}", &body[..1], &body[1..])
            } else {
                format!("{fill}{body}")
            };
        }
        out.push_str(&body);
    }
    Ok(out)
}

/// A PCRE pattern as PHP writes one (`/…/i`), read into a Rust regex.
#[derive(Clone)]
pub struct Pcre(regex::Regex);

impl Pcre {
    /// The pattern, compiled once per process (a mapping applies the same few to every record);
    /// `None` for one PHP itself rejects (it warns and its `preg_*` return null or false), an error
    /// for one PHP runs but syncline cannot (backreferences, lookarounds).
    pub fn cached(pattern: &str) -> Result<Option<Pcre>, Error> {
        static PATTERNS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, Option<Pcre>>>> =
            std::sync::OnceLock::new();
        let patterns = PATTERNS.get_or_init(Default::default);
        if let Some(known) = patterns.lock().unwrap_or_else(|e| e.into_inner()).get(pattern) {
            return Ok(known.clone());
        }
        let parsed = match Pcre::parse(pattern) {
            Ok(pcre) => Some(pcre),
            Err(error) if error.to_string().contains("not supported") => return Err(error),
            Err(_) => None,
        };
        let mut patterns = patterns.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a template that makes its patterns from data cannot grow this without end.
        if patterns.len() >= 1024 {
            patterns.clear();
        }
        patterns.insert(pattern.to_string(), parsed.clone());
        Ok(parsed)
    }

    pub fn parse(pattern: &str) -> Result<Pcre, Error> {
        let pattern = pattern.trim_start();
        let mut chars = pattern.chars();
        let open = chars.next().ok_or_else(|| error("preg: Empty regular expression"))?;
        if open.is_alphanumeric() || open == '\\' {
            return Err(error("preg: Delimiter must not be alphanumeric, backslash, or NUL"));
        }
        let close = match open {
            '(' => ')',
            '[' => ']',
            '{' => '}',
            '<' => '>',
            c => c,
        };
        let body = &pattern[open.len_utf8()..];
        let end = body.rfind(close).ok_or_else(|| error(format!("preg: No ending delimiter '{close}' found")))?;
        let (expression, flags) = (&body[..end], &body[end + close.len_utf8()..]);
        let mut builder = regex::RegexBuilder::new(expression);
        for flag in flags.chars() {
            match flag {
                'i' => builder.case_insensitive(true),
                'm' => builder.multi_line(true),
                's' => builder.dot_matches_new_line(true),
                'x' => builder.ignore_whitespace(true),
                'u' | 'D' => &mut builder,
                'U' => builder.swap_greed(true),
                other => return Err(error(format!("preg: Unknown modifier '{other}'"))),
            };
        }
        // PCRE without `u` works on bytes; syncline's strings are UTF-8 text, matched as characters.
        builder.size_limit(1 << 20).build().map(Pcre).map_err(|e| {
            let text = e.to_string();
            if text.contains("look-around") || text.contains("backreference") {
                error(format!("the pattern is not one syncline can run (backreferences and lookarounds are not supported): {text}"))
            } else {
                error(format!("preg: Compilation failed: {text}"))
            }
        })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }

    /// `preg_replace`: `$1`, `\1` and `${1}` in the replacement name groups.
    pub fn replace_all(&self, text: &str, replacement: &str) -> Result<String, Error> {
        let mut template = String::new();
        let chars: Vec<char> = replacement.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '\\' | '$' if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                    let mut j = i + 1;
                    while j < chars.len() && chars[j].is_ascii_digit() && j < i + 3 {
                        j += 1;
                    }
                    template.push_str(&format!("${{{}}}", chars[i + 1..j].iter().collect::<String>()));
                    i = j;
                }
                '$' if chars.get(i + 1) == Some(&'{') => {
                    let close = chars[i..].iter().position(|c| *c == '}').map(|p| p + i);
                    match close {
                        Some(close) => {
                            template.push_str(&format!("${{{}}}", chars[i + 2..close].iter().collect::<String>()));
                            i = close + 1;
                        }
                        None => {
                            template.push_str("$$");
                            i += 1;
                        }
                    }
                }
                '$' => {
                    template.push_str("$$");
                    i += 1;
                }
                c => {
                    template.push(c);
                    i += 1;
                }
            }
        }
        let room = super::budget::room();
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for captures in self.0.captures_iter(text) {
            let whole = captures.get(0).expect("group 0 is the match");
            out.push_str(&text[last..whole.start()]);
            captures.expand(&template, &mut out);
            last = whole.end();
            // Checked as it grows: `$0$0$0…` over many matches multiplies the text.
            if out.len() > room {
                return Err(super::budget::too_large());
            }
        }
        out.push_str(&text[last..]);
        Ok(out)
    }
}

/// The decimal digits at `chars[*i..]` as a number (saturating), `i` moved past them.
fn decimal(chars: &[char], i: &mut usize) -> usize {
    let mut n = 0usize;
    while let Some(d) = chars.get(*i).and_then(|c| c.to_digit(10)) {
        n = n.saturating_mul(10).saturating_add(d as usize);
        *i += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_string_functions() {
        assert_eq!(html("<a href='x'>&</a>"), "&lt;a href=&#039;x&#039;&gt;&amp;&lt;/a&gt;");
        assert_eq!(number_format(1234567.891, 2, ",", "."), "1.234.567,89");
        assert_eq!(number_format(0.5, 0, ".", ","), "1");
        assert_eq!(strtr("Hi all, I said", &[("Hi".into(), "Hello".into()), ("Hello".into(), "x".into())]).unwrap(), "Hello all, I said");
        assert_eq!(strtr("Hello", &[("He".into(), "1".into()), ("Hell".into(), "2".into()), ("lo".into(), "3".into())]).unwrap(), "2o");
        assert_eq!(split("a,b,c,d", ",", Some(2)).unwrap(), ["a", "b,c,d"]);
        assert_eq!(split("a,b,c,d", ",", Some(-1)).unwrap(), ["a", "b", "c"]);
        assert_eq!(split("abcde", "", Some(2)).unwrap(), ["ab", "cd", "e"]);
        assert_eq!(strip_tags("<p>Hi <b>there</b><!-- x --></p>", "<b>"), "Hi <b>there</b>");
        assert_eq!(title("hello WORLD-wide"), "Hello World-Wide");
        assert_eq!(trim("--a-b--", Some("-"), "both").unwrap(), "a-b");
        assert!(trim("x", Some("-"), "-").is_err());
        assert_eq!(rawurlencode("a b&c~"), "a%20b%26c~");
        assert_eq!(
            sprintf("%05.1f|%-4s|%'*6d|%2$s", &[Value::from(2.14159), Value::from("ab"), Value::from(42)]).unwrap(),
            "002.1|ab  |****42|ab"
        );
        let pcre = Pcre::parse("/[\\s-]+/").unwrap();
        assert_eq!(pcre.replace_all("a  b--c", "-").unwrap(), "a-b-c");
        assert_eq!(Pcre::parse("/(\\w+) (\\w+)/i").unwrap().replace_all("Hello World", "$2 \\1").unwrap(), "World Hello");
    }
}
