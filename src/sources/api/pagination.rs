//! Walking the pages of an endpoint: page numbers, offset/limit, a next link in the body, an RFC 8288
//! `Link` header, or a cursor token in the body. Every style stops at an empty page, and guards
//! against APIs that ignore the page parameter or link back to a page already read.

use std::collections::HashSet;

use reqwest::header::{HeaderMap, LINK};
use url::Url;

use crate::config::{PaginationDef, PaginationKind};
use crate::envelope::lookup_text;
use crate::path::DotPath;

/// Where APIs put the next page's link: a top-level `next` (OpenConnector's only place), JSON:API's
/// `links.next` and HAL's `_links.next.href`.
const NEXT_LINKS: [&str; 3] = ["next", "links.next", "_links.next.href"];

/// What to do after a page.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Fetch(Url),
    Done,
    /// Done, with something to tell the user.
    DoneWarning(String),
    /// Stopped at `maxPages` although more pages exist.
    Truncated(String),
}

/// The pagination state of one feed.
pub struct Pager {
    def: PaginationDef,
    /// Where a next link or cursor may sit in the body, tried in order.
    paths: Vec<DotPath>,
    max_pages: Option<u32>,
    pages: u32,
    /// The longest page so far: a shorter one after it is the last (servers may cap the page size).
    longest: usize,
    page: u64,
    offset: u64,
    previous_body: Option<blake3::Hash>,
    visited: HashSet<String>,
    cursors: HashSet<String>,
    /// Page mode found next links in the bodies and follows them (OpenConnector's page mode).
    following: bool,
}

impl Pager {
    pub fn new(def: &PaginationDef, max_pages: Option<u32>) -> Pager {
        let paths: Vec<&str> = match (def.kind, def.path.as_deref()) {
            (PaginationKind::Next | PaginationKind::Cursor, Some(path)) => vec![path],
            (PaginationKind::Cursor, None) => vec!["next_cursor"],
            (PaginationKind::Next, None) => NEXT_LINKS.to_vec(),
            (PaginationKind::Page, _) if def.follow_next => NEXT_LINKS.to_vec(),
            _ => Vec::new(),
        };
        Pager {
            def: def.clone(),
            paths: paths.into_iter().map(DotPath::parse).collect(),
            max_pages,
            pages: 0,
            longest: 0,
            page: def.start.unwrap_or(1),
            offset: 0,
            previous_body: None,
            visited: HashSet::new(),
            cursors: HashSet::new(),
            following: false,
        }
    }

    /// The first request.
    pub fn first(&mut self, base: Url) -> Url {
        self.visited.insert(base.to_string());
        match self.def.kind {
            PaginationKind::Page => self.page_url(&base),
            PaginationKind::Offset => self.offset_url(&base),
            _ => base,
        }
    }

    fn page_url(&self, base: &Url) -> Url {
        let mut params = vec![(self.def.param.as_deref().unwrap_or("page"), self.page.to_string())];
        if let (Some(name), Some(size)) = (&self.def.size_param, self.def.size) {
            params.push((name.as_str(), size.to_string()));
        }
        set_params(base, &params)
    }

    fn offset_url(&self, base: &Url) -> Url {
        let limit = self.def.size.unwrap_or(100);
        set_params(
            base,
            &[
                (self.def.param.as_deref().unwrap_or("offset"), self.offset.to_string()),
                (self.def.size_param.as_deref().unwrap_or("limit"), limit.to_string()),
            ],
        )
    }

    /// Decides the next request from the page just read (`records` found in it).
    pub fn next(&mut self, current: &Url, headers: &HeaderMap, body: &[u8], records: usize) -> Next {
        self.pages += 1;
        if records == 0 {
            return Next::Done;
        }
        let body_hash = blake3::hash(body);
        let repeated = self.previous_body.replace(body_hash) == Some(body_hash);
        let next = match self.def.kind {
            PaginationKind::None => return Next::Done,
            PaginationKind::Page | PaginationKind::Offset => {
                if repeated {
                    let param = self
                        .def
                        .param
                        .clone()
                        .unwrap_or_else(|| if self.def.kind == PaginationKind::Page { "page".into() } else { "offset".into() });
                    return Next::DoneWarning(format!(
                        "page {} repeated the page before it: the API seems to ignore `{param}`; stopped reading",
                        self.pages
                    ));
                }
                let link = self.link_in(body).and_then(|link| current.join(&link).ok()).filter(|_| self.def.kind == PaginationKind::Page);
                if self.following && link.is_none() {
                    // A feed walked by its links ends where the links end.
                    return Next::Done;
                }
                if let Some(link) = link {
                    self.following = true;
                    // OpenConnector's page mode follows a next link when the body has one, keeping
                    // the query parameters the link leaves out.
                    let page_param = self.def.param.as_deref().unwrap_or("page");
                    // Only to the same origin: the query may hold a key meant for this host alone.
                    let same_origin = link.origin() == current.origin();
                    let carried: Vec<(String, String)> = current
                        .query_pairs()
                        .into_owned()
                        .filter(|_| same_origin)
                        .filter(|(k, _)| k != page_param && Some(k.as_str()) != self.def.size_param.as_deref())
                        .filter(|(k, _)| !link.query_pairs().any(|(lk, _)| lk == *k))
                        .collect();
                    let link = set_params(&link, &carried.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
                    if !self.visited.insert(link.to_string()) {
                        return Next::DoneWarning(format!(
                            "the next link leads back to a page already read ({}); stopped reading",
                            link.path()
                        ));
                    }
                    return self.fetch(link);
                }
                if records < self.longest {
                    return Next::Done;
                }
                self.longest = records;
                if self.def.kind == PaginationKind::Page {
                    self.page += 1;
                    self.page_url(current)
                } else {
                    self.offset += records as u64;
                    self.offset_url(current)
                }
            }
            PaginationKind::Next => {
                let Some(link) = self.link_in(body) else { return Next::Done };
                match current.join(&link) {
                    Ok(url) => url,
                    Err(_) => return Next::DoneWarning(format!("the next link `{link}` is not a URL; stopped reading")),
                }
            }
            PaginationKind::Link => match next_link(headers).and_then(|l| current.join(&l).ok()) {
                Some(url) => url,
                None => return Next::Done,
            },
            PaginationKind::Cursor => {
                let Some(cursor) = self.link_in(body) else { return Next::Done };
                // Any cursor seen before, not just the last: A → B → A would go round for ever.
                if !self.cursors.insert(cursor.clone()) {
                    return Next::DoneWarning(format!("the cursor `{}` repeated; stopped reading", crate::secrets::scrub(&cursor)));
                }
                set_params(current, &[(self.def.param.as_deref().unwrap_or("cursor"), cursor)])
            }
        };
        if matches!(self.def.kind, PaginationKind::Next | PaginationKind::Link) && !self.visited.insert(next.to_string()) {
            return Next::DoneWarning(format!("the next link leads back to a page already read ({}); stopped reading", next.path()));
        }
        self.fetch(next)
    }

    /// The first next link (or cursor) found at the paths this feed uses.
    fn link_in(&self, body: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(body).ok()?;
        self.paths.iter().find_map(|path| lookup_text(text, path))
    }

    /// Fetch `next`, unless `maxPages` is reached.
    fn fetch(&self, next: Url) -> Next {
        if self.max_pages.is_some_and(|max| self.pages >= max) {
            return Next::Truncated(format!(
                "maxPages ({}) reached before the last page: the feed was cut short, so nothing is deleted in this run",
                self.pages
            ));
        }
        Next::Fetch(next)
    }
}

/// `url` with each `(name, value)` set, replacing any earlier value of that name.
fn set_params<V: AsRef<str>>(url: &Url, params: &[(&str, V)]) -> Url {
    let kept: Vec<(String, String)> = url.query_pairs().into_owned().filter(|(k, _)| !params.iter().any(|(n, _)| n == k)).collect();
    let mut out = url.clone();
    {
        let mut pairs = out.query_pairs_mut();
        pairs.clear();
        pairs.extend_pairs(kept);
        for (name, value) in params {
            pairs.append_pair(name, value.as_ref());
        }
    }
    out
}

/// The `rel="next"` target of an RFC 8288 `Link` header.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(LINK) {
        let Ok(text) = value.to_str() else { continue };
        for link in split_links(text) {
            let Some((target, params)) = link.split_once('>') else { continue };
            let target = target.trim().trim_start_matches('<');
            let is_next = params.split(';').any(|p| {
                let p = p.trim();
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("rel")
                        && v.trim().trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case("next"))
                })
            });
            if is_next {
                return Some(target.to_string());
            }
        }
    }
    None
}

/// Splits a Link header at the commas between links (not those inside `<…>` or quotes).
fn split_links(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut in_url, mut in_quote) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            '<' if !in_quote => in_url = true,
            '>' if !in_quote => in_url = false,
            '"' if !in_url => in_quote = !in_quote,
            ',' if !in_url && !in_quote => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn def(json: serde_json::Value) -> PaginationDef {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn page_numbers_stop_on_a_short_page_after_full_ones() {
        let mut p = Pager::new(&def(serde_json::json!({"type": "page", "sizeParam": "size", "size": 2})), None);
        let first = p.first(Url::parse("http://h/pets?status=a").unwrap());
        assert_eq!(first.as_str(), "http://h/pets?status=a&page=1&size=2");
        let Next::Fetch(second) = p.next(&first, &HeaderMap::new(), b"[1,2]", 2) else { panic!() };
        assert_eq!(second.as_str(), "http://h/pets?status=a&page=2&size=2");
        assert_eq!(p.next(&second, &HeaderMap::new(), b"[3]", 1), Next::Done);
        // A server that caps the page size below `size` is read to its end, not cut at page 1.
        let mut p = Pager::new(&def(serde_json::json!({"type": "page", "sizeParam": "size", "size": 50})), None);
        let first = p.first(Url::parse("http://h/pets").unwrap());
        assert!(matches!(p.next(&first, &HeaderMap::new(), b"[1,2]", 25), Next::Fetch(_)));
    }

    #[test]
    fn offset_advances_by_records_and_repeats_are_caught() {
        let mut p = Pager::new(&def(serde_json::json!({"type": "offset", "size": 2})), None);
        let first = p.first(Url::parse("http://h/x").unwrap());
        assert_eq!(first.query(), Some("offset=0&limit=2"));
        let Next::Fetch(second) = p.next(&first, &HeaderMap::new(), b"[1,2]", 2) else { panic!() };
        assert_eq!(second.query(), Some("offset=2&limit=2"));
        assert!(matches!(p.next(&second, &HeaderMap::new(), b"[1,2]", 2), Next::DoneWarning(_)));
    }

    #[test]
    fn next_links_resolve_and_loops_stop() {
        let mut p = Pager::new(&def(serde_json::json!({"type": "next", "path": "links.next"})), None);
        let first = p.first(Url::parse("http://h/a/items").unwrap());
        let Next::Fetch(second) = p.next(&first, &HeaderMap::new(), br#"{"links":{"next":"items?after=2"}}"#, 2) else { panic!() };
        assert_eq!(second.as_str(), "http://h/a/items?after=2");
        assert!(matches!(p.next(&second, &HeaderMap::new(), br#"{"links":{"next":"/a/items"}}"#, 2), Next::DoneWarning(_)));
        assert_eq!(p.next(&second, &HeaderMap::new(), br#"{"links":{"next":null}}"#, 2), Next::Done);
    }

    #[test]
    fn link_header_and_cursor_and_max_pages() {
        let mut headers = HeaderMap::new();
        headers.insert(LINK, HeaderValue::from_static(r#"<http://h/x?page=1>; rel="prev", <http://h/x?page=3>; rel="next""#));
        assert_eq!(next_link(&headers).as_deref(), Some("http://h/x?page=3"));
        let mut p = Pager::new(&def(serde_json::json!({"type": "cursor", "path": "meta.next", "param": "c"})), Some(2));
        let first = p.first(Url::parse("http://h/x").unwrap());
        let Next::Fetch(second) = p.next(&first, &HeaderMap::new(), br#"{"meta":{"next":"abc"}}"#, 1) else { panic!() };
        assert_eq!(second.query(), Some("c=abc"));
        assert!(matches!(p.next(&second, &HeaderMap::new(), br#"{"meta":{"next":"def"}}"#, 1), Next::Truncated(_)));
    }

    #[test]
    fn cursors_that_go_round_stop() {
        let mut p = Pager::new(&def(serde_json::json!({"type": "cursor", "path": "next"})), None);
        let mut url = p.first(Url::parse("http://h/x").unwrap());
        for (i, cursor) in ["a", "b", "a"].iter().enumerate() {
            let body = format!(r#"{{"next":"{cursor}","n":{i}}}"#);
            match p.next(&url, &HeaderMap::new(), body.as_bytes(), 1) {
                Next::Fetch(next) => url = next,
                Next::DoneWarning(warning) => {
                    assert_eq!(i, 2, "{warning}");
                    assert!(warning.contains("repeated"), "{warning}");
                    return;
                }
                _ => panic!("page {i}"),
            }
        }
        panic!("the cycle was followed");
    }

    #[test]
    fn a_next_link_elsewhere_gets_none_of_this_querys_parameters() {
        let follow = PaginationDef { follow_next: true, ..def(serde_json::json!({"type": "page"})) };
        let mut p = Pager::new(&follow, None);
        let current = Url::parse("http://h/x?page=1&api_key=k-1&tenant=t").unwrap();
        let Next::Fetch(same) = p.next(&current, &HeaderMap::new(), br#"{"next":"http://h/x?page=2"}"#, 1) else { panic!() };
        assert_eq!(same.query(), Some("page=2&api_key=k-1&tenant=t"));
        let Next::Fetch(other) = p.next(&same, &HeaderMap::new(), br#"{"next":"http://evil.example/x?page=3"}"#, 1) else { panic!() };
        assert_eq!(other.query(), Some("page=3"));
    }
}
