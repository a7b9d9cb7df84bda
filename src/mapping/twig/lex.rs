//! Twig's lexer, as `Twig\Lexer` reads a template: text, `{{ … }}`, `{% … %}` and `{# … #}`, with
//! their whitespace control (`-` trims all whitespace, `~` spaces and tabs only; a `%}` or `#}` eats
//! the newline right after it), `{% verbatim %}` blocks, and the tokens inside the tags: names,
//! numbers, strings (double-quoted ones with `#{…}` interpolation), operators and punctuation.
//! Whitespace control is applied here, so the text pieces are exactly what Twig prints.

use super::TwigError;

/// A token inside `{{ }}` or `{% %}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Name(String),
    Int(i64),
    Float(f64),
    /// A string, with `#{…}` parts of a double-quoted one as token lists of their own.
    Str(Vec<StrPart>),
    /// An operator (`and`, `not in`, `starts with`, `==`, `..`, `=`, …), its whitespace normalised.
    Op(String),
    /// One of `()[]{}?:.,|`.
    Punct(char),
    Arrow,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StrPart {
    Text(String),
    Code(Vec<Token>),
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Print(Vec<Token>, usize),
    Tag(Vec<Token>, usize),
    /// `{% verbatim %}…{% endverbatim %}`: text printed as it is.
    Verbatim(String),
}

/// Operators, longest first (Twig sorts them by length), as written with single spaces.
const OPERATORS: &[&str] = &[
    "starts with",
    "ends with",
    "has every",
    "has some",
    "matches",
    "not in",
    "is not",
    "b-and",
    "b-xor",
    "b-or",
    "and",
    "not",
    "<=>",
    "**",
    "??",
    "==",
    "!=",
    "<=",
    ">=",
    "//",
    "..",
    "or",
    "in",
    "is",
    "<",
    ">",
    "+",
    "-",
    "~",
    "*",
    "/",
    "%",
    "=",
];

pub fn lex(source: &str) -> Result<Vec<Piece>, TwigError> {
    let mut pieces = Vec::new();
    let bytes = source.as_bytes();
    let mut at = 0;
    let mut text = String::new();
    // What the last tag's closing trims from the text after it.
    let mut trim_next: Option<Trim> = None;
    while at < bytes.len() {
        let Some(open) = find_open(source, at) else {
            push_text(&mut text, &source[at..], trim_next.take());
            break;
        };
        push_text(&mut text, &source[at..open], trim_next.take());
        let kind = bytes[open + 1];
        let mut inner = open + 2;
        let modifier = bytes.get(inner).copied();
        match modifier {
            Some(b'-') => {
                rtrim(&mut text, true);
                inner += 1;
            }
            Some(b'~') => {
                rtrim(&mut text, false);
                inner += 1;
            }
            _ => {}
        }
        match kind {
            b'#' => {
                let close = source[inner..].find("#}").map(|i| i + inner).ok_or_else(|| TwigError::syntax(open, "an unclosed comment"))?;
                let before = bytes.get(close.wrapping_sub(1)).copied();
                trim_next = Some(closing_trim(before, true));
                at = close + 2;
            }
            b'{' | b'%' => {
                let closer = if kind == b'{' { "}}" } else { "%}" };
                let (tokens, end, before) = tokens(source, inner, closer)?;
                trim_next = Some(closing_trim(before, kind == b'%'));
                at = end;
                if kind == b'%' && matches!(tokens.first(), Some(Token::Name(n)) if n == "verbatim") && tokens.len() == 1 {
                    flush(&mut pieces, &mut text);
                    let (body, after) = verbatim(source, at)?;
                    pieces.push(Piece::Verbatim(body));
                    at = after.0;
                    trim_next = Some(after.1);
                    continue;
                }
                flush(&mut pieces, &mut text);
                pieces.push(if kind == b'{' { Piece::Print(tokens, open) } else { Piece::Tag(tokens, open) });
            }
            _ => unreachable!("find_open finds only tag openers"),
        }
    }
    flush(&mut pieces, &mut text);
    Ok(pieces)
}

/// How a closing delimiter trims the text after it.
#[derive(Debug, Clone, Copy)]
enum Trim {
    /// `-}}`: all whitespace.
    All,
    /// `~}}`: spaces and tabs (and NUL, vertical tab).
    Line,
    /// `%}`, `#}`: one newline.
    Newline,
    None,
}

fn closing_trim(before: Option<u8>, eats_newline: bool) -> Trim {
    match before {
        Some(b'-') => Trim::All,
        Some(b'~') => Trim::Line,
        _ if eats_newline => Trim::Newline,
        _ => Trim::None,
    }
}

fn push_text(text: &mut String, piece: &str, trim: Option<Trim>) {
    let piece = match trim {
        Some(Trim::All) => piece.trim_start_matches(is_php_space),
        Some(Trim::Line) => piece.trim_start_matches([' ', '\t', '\0', '\x0B']),
        Some(Trim::Newline) => piece.strip_prefix('\n').unwrap_or(piece),
        _ => piece,
    };
    text.push_str(piece);
}

/// `\s` of PCRE: space, \t, \n, \v, \f, \r.
fn is_php_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

fn rtrim(text: &mut String, all: bool) {
    let kept = if all { text.trim_end_matches(is_php_space).len() } else { text.trim_end_matches([' ', '\t', '\0', '\x0B']).len() };
    text.truncate(kept);
}

fn flush(pieces: &mut Vec<Piece>, text: &mut String) {
    if !text.is_empty() {
        pieces.push(Piece::Text(std::mem::take(text)));
    }
}

/// The next `{{`, `{%` or `{#` at or after `from`.
fn find_open(source: &str, from: usize) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut at = from;
    while let Some(i) = memchr::memchr(b'{', &bytes[at..]) {
        let i = at + i;
        if matches!(bytes.get(i + 1), Some(b'{' | b'%' | b'#')) {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

/// The text up to `{% endverbatim %}`, and where the text after it starts with its trim.
fn verbatim(source: &str, from: usize) -> Result<(String, (usize, Trim)), TwigError> {
    let mut at = from;
    loop {
        let open =
            source[at..].find("{%").map(|i| i + at).ok_or_else(|| TwigError::syntax(from, "`verbatim` is not closed by `endverbatim`"))?;
        let mut inner = open + 2;
        let modifier = source.as_bytes().get(inner).copied();
        if matches!(modifier, Some(b'-' | b'~')) {
            inner += 1;
        }
        let rest = &source[inner..];
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("endverbatim") {
            let after_name = after.trim_start();
            let close_at = source.len() - after_name.len();
            let (close_len, before) = if after_name.starts_with("-%}") {
                (3, Some(b'-'))
            } else if after_name.starts_with("~%}") {
                (3, Some(b'~'))
            } else if after_name.starts_with("%}") {
                (2, None)
            } else {
                at = open + 2;
                continue;
            };
            let mut body = source[from..open].to_string();
            match modifier {
                Some(b'-') => rtrim(&mut body, true),
                Some(b'~') => rtrim(&mut body, false),
                _ => {}
            }
            return Ok((body, (close_at + close_len, closing_trim(before, true))));
        }
        at = open + 2;
    }
}

/// The tokens of a tag's code from `from` to its `closer`; where the text after it starts, and the
/// byte before the closer (`-` or `~` for whitespace control).
fn tokens(source: &str, from: usize, closer: &str) -> Result<(Vec<Token>, usize, Option<u8>), TwigError> {
    let mut lexer = Code { source, at: from };
    let mut out = Vec::new();
    // The closer counts only outside brackets: `{{ f({a: {b: 1}}) }}` ends at its last `}}`.
    let mut open = 0usize;
    loop {
        lexer.skip_space();
        let rest = &source[lexer.at..];
        if open == 0 {
            for modifier in ["-", "~", ""] {
                if rest.starts_with(modifier) && rest[modifier.len()..].starts_with(closer) {
                    let before = modifier.as_bytes().first().copied();
                    return Ok((out, lexer.at + modifier.len() + closer.len(), before));
                }
            }
        }
        if rest.is_empty() {
            return Err(TwigError::syntax(from, format!("a tag is not closed by `{closer}`")));
        }
        let token = lexer.token()?;
        match token {
            Token::Punct('(' | '[' | '{') => open += 1,
            Token::Punct(')' | ']' | '}') => open = open.saturating_sub(1),
            _ => {}
        }
        out.push(token);
    }
}

struct Code<'a> {
    source: &'a str,
    at: usize,
}

impl<'a> Code<'a> {
    fn rest(&self) -> &'a str {
        &self.source[self.at..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start_matches(is_php_space).len();
    }

    fn token(&mut self) -> Result<Token, TwigError> {
        let rest = self.rest();
        let start = self.at;
        if rest.starts_with("=>") {
            self.at += 2;
            return Ok(Token::Arrow);
        }
        if let Some((op, len)) = operator(rest, self.source[..start].chars().last()) {
            self.at += len;
            return Ok(Token::Op(op));
        }
        let first = rest.chars().next().unwrap_or(' ');
        if first.is_ascii_alphabetic() || first == '_' || !first.is_ascii() {
            let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii())).unwrap_or(rest.len());
            self.at += len;
            return Ok(Token::Name(rest[..len].to_string()));
        }
        if first.is_ascii_digit() {
            return Ok(self.number());
        }
        if first == '\'' || first == '"' {
            return self.string(first);
        }
        if "()[]{}?:.,|".contains(first) {
            self.at += 1;
            return Ok(Token::Punct(first));
        }
        Err(TwigError::syntax(start, format!("unexpected character `{first}`")))
    }

    fn number(&mut self) -> Token {
        let rest = self.rest();
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let mut len = digits(rest);
        let mut float = false;
        if rest[len..].starts_with('.') && rest[len + 1..].starts_with(|c: char| c.is_ascii_digit()) {
            len += 1 + digits(&rest[len + 1..]);
            float = true;
        }
        let exp = &rest[len..];
        if exp.starts_with(['e', 'E']) && exp[1..].starts_with(['+', '-']) && exp[2..].starts_with(|c: char| c.is_ascii_digit()) {
            len += 2 + digits(&exp[2..]);
            float = true;
        }
        let text = &rest[..len];
        self.at += len;
        match (float, text.parse::<i64>()) {
            (false, Ok(n)) => Token::Int(n),
            _ => Token::Float(text.parse().unwrap_or(f64::INFINITY)),
        }
    }

    /// A string literal; a double-quoted one may hold `#{ … }` interpolations.
    fn string(&mut self, quote: char) -> Result<Token, TwigError> {
        let start = self.at;
        self.at += 1;
        let mut parts = Vec::new();
        let mut raw = String::new();
        loop {
            let rest = self.rest();
            let Some(c) = rest.chars().next() else { return Err(TwigError::syntax(start, "an unclosed string")) };
            if c == '\\' {
                let escaped = rest[1..].chars().next().ok_or_else(|| TwigError::syntax(start, "an unclosed string"))?;
                raw.push('\\');
                raw.push(escaped);
                self.at += 1 + escaped.len_utf8();
            } else if c == quote {
                self.at += 1;
                break;
            } else if quote == '"' && rest.starts_with("#{") {
                if !raw.is_empty() {
                    parts.push(StrPart::Text(stripcslashes(&std::mem::take(&mut raw))));
                }
                self.at += 2;
                let mut code = Vec::new();
                loop {
                    self.skip_space();
                    if self.rest().starts_with('}') {
                        self.at += 1;
                        break;
                    }
                    if self.rest().is_empty() {
                        return Err(TwigError::syntax(start, "an unclosed `#{` in a string"));
                    }
                    let token = self.token()?;
                    // A hash literal inside: its braces nest.
                    if token == Token::Punct('{') {
                        code.push(token);
                        let mut depth = 1;
                        while depth > 0 {
                            self.skip_space();
                            let inner = self.token()?;
                            match inner {
                                Token::Punct('{') => depth += 1,
                                Token::Punct('}') => depth -= 1,
                                _ => {}
                            }
                            code.push(inner);
                        }
                        continue;
                    }
                    code.push(token);
                }
                parts.push(StrPart::Code(code));
            } else {
                raw.push(c);
                self.at += c.len_utf8();
            }
        }
        if !raw.is_empty() || parts.is_empty() {
            parts.push(StrPart::Text(stripcslashes(&raw)));
        }
        Ok(Token::Str(parts))
    }
}

/// The operator at the start of `rest`: word operators need a space, `(`, `[` or `{` after them and no
/// `.` or `|` before; a space inside one (`not in`) may be any whitespace.
fn operator(rest: &str, before: Option<char>) -> Option<(String, usize)> {
    for op in OPERATORS {
        let words: Vec<&str> = op.split(' ').collect();
        let mut len = 0;
        let mut matched = true;
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                let spaces = rest[len..].len() - rest[len..].trim_start_matches(is_php_space).len();
                if spaces == 0 {
                    matched = false;
                    break;
                }
                len += spaces;
            }
            if !rest[len..].starts_with(word) {
                matched = false;
                break;
            }
            len += word.len();
        }
        if !matched {
            continue;
        }
        let alpha_end = op.ends_with(|c: char| c.is_ascii_alphabetic());
        if alpha_end && !rest[len..].starts_with(|c: char| is_php_space(c) || "()[{".contains(c)) {
            continue;
        }
        if op.starts_with(|c: char| c.is_ascii_alphabetic()) && matches!(before, Some('.' | '|')) {
            continue;
        }
        return Some((op.to_string(), len));
    }
    None
}

/// PHP's `stripcslashes`: C escapes (`\n`, `\t`, `\x41`, octal `\101`), and a backslash before any
/// other character dropped.
pub fn stripcslashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut bytes: Vec<u8> = Vec::with_capacity(text.len());
    let raw = text.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' || i + 1 >= raw.len() {
            bytes.push(raw[i]);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        match c {
            b'n' => bytes.push(b'\n'),
            b't' => bytes.push(b'\t'),
            b'r' => bytes.push(b'\r'),
            b'a' => bytes.push(0x07),
            b'v' => bytes.push(0x0B),
            b'b' => bytes.push(0x08),
            b'f' => bytes.push(0x0C),
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let end = (i + 2).min(raw.len());
                let digits = raw[i..end].iter().take_while(|b| b.is_ascii_hexdigit()).count();
                bytes.push(u8::from_str_radix(std::str::from_utf8(&raw[i..i + digits]).unwrap_or("0"), 16).unwrap_or(0));
                i += digits;
            }
            b'0'..=b'7' => {
                let start = i - 1;
                let digits = 1 + raw[i..].iter().take(2).take_while(|b| (b'0'..=b'7').contains(b)).count();
                let value = u32::from_str_radix(std::str::from_utf8(&raw[start..start + digits]).unwrap_or("0"), 8).unwrap_or(0);
                bytes.push((value & 0xFF) as u8);
                i = start + digits;
            }
            other => bytes.push(other),
        }
    }
    out.push_str(&String::from_utf8_lossy(&bytes));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_control_is_applied_to_the_text() {
        let pieces = lex("a  {{- x -}}  b {%~ if y ~%}  c\n{% endif %}\nd{# note #}\ne").unwrap();
        let texts: Vec<&str> = pieces.iter().filter_map(|p| if let Piece::Text(t) = p { Some(t.as_str()) } else { None }).collect();
        assert_eq!(texts, ["a", "b", "c\n", "de"]);
    }

    #[test]
    fn operators_strings_and_numbers() {
        let Piece::Print(tokens, _) = &lex("{{ a not  in b and c starts with 'x\\'y' ~ 1.5 ~ 2 ~ 1e+3 }}").unwrap()[0] else { panic!() };
        assert_eq!(tokens[1], Token::Op("not in".into()));
        assert_eq!(tokens[5], Token::Op("starts with".into()));
        assert_eq!(tokens[6], Token::Str(vec![StrPart::Text("x'y".into())]));
        assert_eq!(tokens[8], Token::Float(1.5));
        assert_eq!(tokens[10], Token::Int(2));
        assert_eq!(tokens[12], Token::Float(1000.0));
        let Piece::Print(tokens, _) = &lex("{{ \"Hi #{ name ~ '!' } you\" }}").unwrap()[0] else { panic!() };
        let Token::Str(parts) = &tokens[0] else { panic!() };
        assert_eq!(parts.len(), 3);
        assert!(matches!(&parts[1], StrPart::Code(code) if code.len() == 3));
        // A word operator needs a space after it: `order` is a name.
        let Piece::Print(tokens, _) = &lex("{{ order.in }}").unwrap()[0] else { panic!() };
        assert_eq!(tokens, &vec![Token::Name("order".into()), Token::Punct('.'), Token::Name("in".into())]);
    }

    #[test]
    fn verbatim_and_errors() {
        assert_eq!(
            lex("{% verbatim %}{{ x }}{% endverbatim %}!").unwrap(),
            vec![Piece::Verbatim("{{ x }}".into()), Piece::Text("!".into())]
        );
        assert!(lex("{{ x ").is_err());
        assert!(lex("{{ 'open }}").is_err());
        assert_eq!(stripcslashes(r"a\nb\x41\101\q"), "a\nbAAq");
    }
}
