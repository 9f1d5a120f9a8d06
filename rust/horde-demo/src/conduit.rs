//! The demo server's stateful part: bearer-token login (`/login`, `/me`) and an in-memory
//! RealWorld "Conduit" API under `/api`. Everything is bounded (users, articles, comments) so a
//! long load test cannot grow the server without limit; one mutex guards it all.

// The error side of `Reply` is a complete response, no bigger than the success side; boxing it
// would only add an allocation to every error path.
#![allow(clippy::result_large_err)]

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use super::routes::{allow, error, json_value, percent_decode, Reply, Resp};
use super::State;

const MAX_USERS: usize = 100_000;
const MAX_ARTICLES: usize = 10_000;
const MAX_COMMENTS_PER_ARTICLE: usize = 100;
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;
/// `/api/tags` is a "popular tags" list; capping it keeps the response small however many
/// distinct tags a load test invents.
const MAX_TAGS_LISTED: usize = 100;

pub(super) struct Store {
    inner: Mutex<Inner>,
}

impl Store {
    pub(super) fn new() -> Store {
        let mut seed = RandomState::new().build_hasher();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        seed.write_u128(nanos);
        Store {
            inner: Mutex::new(Inner {
                users: HashMap::new(),
                by_token: HashMap::new(),
                by_email: HashMap::new(),
                user_order: VecDeque::new(),
                articles: BTreeMap::new(),
                by_slug: HashMap::new(),
                tag_counts: HashMap::new(),
                next_id: 1,
                rng: seed.finish(),
            }),
        }
    }

    /// A handler that panicked mid-update leaves at worst one half-edited record; refusing every
    /// later request over a poisoned lock would be far worse for a test target.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct User {
    email: String,
    token: String,
    bio: Option<String>,
    image: Option<String>,
}

struct Article {
    slug: String,
    title: String,
    description: String,
    body: String,
    tags: Vec<String>,
    /// Timestamps are kept preformatted: they are read far more often than written.
    created_at: String,
    updated_at: String,
    author: String,
    favorited_by: HashSet<String>,
    comments: VecDeque<Comment>,
}

struct Comment {
    id: u64,
    created_at: String,
    body: String,
    author: String,
}

#[derive(Serialize)]
struct ProfileView<'a> {
    username: &'a str,
    bio: Option<&'a str>,
    image: Option<&'a str>,
    following: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArticleView<'a> {
    slug: &'a str,
    title: &'a str,
    description: &'a str,
    body: &'a str,
    tag_list: &'a [String],
    created_at: &'a str,
    updated_at: &'a str,
    favorited: bool,
    favorites_count: usize,
    author: ProfileView<'a>,
}

#[derive(Serialize)]
struct ArticleEnvelope<'a> {
    article: ArticleView<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArticleList<'a> {
    articles: Vec<ArticleView<'a>>,
    articles_count: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CommentView<'a> {
    id: u64,
    created_at: &'a str,
    updated_at: &'a str,
    body: &'a str,
    author: ProfileView<'a>,
}

#[derive(Serialize)]
struct CommentEnvelope<'a> {
    comment: CommentView<'a>,
}

#[derive(Serialize)]
struct CommentList<'a> {
    comments: Vec<CommentView<'a>>,
}

struct Inner {
    /// Keyed by username.
    users: HashMap<String, User>,
    by_token: HashMap<String, String>,
    by_email: HashMap<String, String>,
    /// Usernames oldest first, for eviction.
    user_order: VecDeque<String>,
    /// Keyed by creation sequence number, so iteration order is age order.
    articles: BTreeMap<u64, Article>,
    by_slug: HashMap<String, u64>,
    tag_counts: HashMap<String, usize>,
    /// Feeds slugs and comment ids, so both are unique for the server's lifetime.
    next_id: u64,
    rng: u64,
}

impl Inner {
    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn next_random(&mut self) -> u64 {
        // splitmix64: tokens only need to be unique and not trivially guessable.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn new_token(&mut self) -> String {
        loop {
            let token = format!("{:016x}{:016x}", self.next_random(), self.next_random());
            if !self.by_token.contains_key(&token) {
                return token;
            }
        }
    }

    /// Each user keeps one token for life, so logging in repeatedly never grows the token table.
    fn insert_user(&mut self, username: String, email: String) {
        let token = self.new_token();
        self.by_token.insert(token.clone(), username.clone());
        self.by_email
            .entry(email.clone())
            .or_insert_with(|| username.clone());
        self.users.insert(
            username.clone(),
            User {
                email,
                token,
                bio: None,
                image: None,
            },
        );
        self.user_order.push_back(username);
        while self.users.len() > MAX_USERS {
            let Some(old) = self.user_order.pop_front() else {
                break;
            };
            if let Some(user) = self.users.remove(&old) {
                self.by_token.remove(&user.token);
                if self.by_email.get(&user.email) == Some(&old) {
                    self.by_email.remove(&user.email);
                }
            }
        }
    }

    fn login_username(&mut self, username: &str) -> String {
        if !self.users.contains_key(username) {
            self.insert_user(username.to_string(), format!("{username}@example.com"));
        }
        self.users
            .get(username)
            .map(|u| u.token.clone())
            .unwrap_or_default()
    }

    /// Demo semantics: any email logs in, creating the account on first sight.
    fn login_email(&mut self, email: &str) -> String {
        if let Some(username) = self.by_email.get(email) {
            return username.clone();
        }
        let base = email
            .split('@')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("user");
        let username = if self.users.contains_key(base) {
            format!("{base}-{}", self.next_id())
        } else {
            base.to_string()
        };
        self.insert_user(username.clone(), email.to_string());
        username
    }

    fn viewer(&self, parts: &Parts) -> Option<String> {
        self.by_token.get(auth_token(parts)?).cloned()
    }

    fn authed(&self, parts: &Parts) -> Result<String, Resp> {
        self.viewer(parts).ok_or_else(unauthorized)
    }

    fn user_json(&self, username: &str) -> Value {
        let user = self.users.get(username);
        json!({
            "email": user.map(|u| u.email.as_str()),
            "token": user.map(|u| u.token.as_str()),
            "username": username,
            "bio": user.and_then(|u| u.bio.as_deref()),
            "image": user.and_then(|u| u.image.as_deref()),
        })
    }

    fn profile<'a>(&'a self, username: &'a str) -> ProfileView<'a> {
        let user = self.users.get(username);
        ProfileView {
            username,
            bio: user.and_then(|u| u.bio.as_deref()),
            image: user.and_then(|u| u.image.as_deref()),
            following: false,
        }
    }

    fn article_view<'a>(&'a self, a: &'a Article, viewer: Option<&str>) -> ArticleView<'a> {
        ArticleView {
            slug: &a.slug,
            title: &a.title,
            description: &a.description,
            body: &a.body,
            tag_list: &a.tags,
            created_at: &a.created_at,
            updated_at: &a.updated_at,
            favorited: viewer.is_some_and(|v| a.favorited_by.contains(v)),
            favorites_count: a.favorited_by.len(),
            author: self.profile(&a.author),
        }
    }

    /// `{"article": {...}}` for the article with this id.
    fn article_response(&self, status: StatusCode, id: u64, viewer: Option<&str>) -> Reply {
        let article = self.articles.get(&id).ok_or_else(article_not_found)?;
        Ok(json_value(
            status,
            &ArticleEnvelope {
                article: self.article_view(article, viewer),
            },
        ))
    }

    fn comment_view<'a>(&'a self, c: &'a Comment) -> CommentView<'a> {
        CommentView {
            id: c.id,
            created_at: &c.created_at,
            updated_at: &c.created_at,
            body: &c.body,
            author: self.profile(&c.author),
        }
    }

    fn article_id(&self, slug: &str) -> Result<u64, Resp> {
        self.by_slug
            .get(slug)
            .copied()
            .ok_or_else(article_not_found)
    }

    fn insert_article(&mut self, mut article: Article) -> u64 {
        let id = self.next_id();
        article.slug = format!("{}-{id}", slugify(&article.title));
        for tag in &article.tags {
            *self.tag_counts.entry(tag.clone()).or_insert(0) += 1;
        }
        self.by_slug.insert(article.slug.clone(), id);
        self.articles.insert(id, article);
        while self.articles.len() > MAX_ARTICLES {
            let Some((_, old)) = self.articles.pop_first() else {
                break;
            };
            self.forget(&old);
        }
        id
    }

    fn remove_article(&mut self, id: u64) {
        if let Some(old) = self.articles.remove(&id) {
            self.forget(&old);
        }
    }

    fn forget(&mut self, article: &Article) {
        self.by_slug.remove(&article.slug);
        for tag in &article.tags {
            if let Some(count) = self.tag_counts.get_mut(tag) {
                *count -= 1;
                if *count == 0 {
                    self.tag_counts.remove(tag);
                }
            }
        }
    }
}

/// `POST /login` `{"username", "password"}` → `{"token"}`.
pub(super) fn login(st: &State, body: &Bytes) -> Reply {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")))?;
    let username = doc.get("username").and_then(Value::as_str).unwrap_or("");
    let password = doc.get("password").and_then(Value::as_str).unwrap_or("");
    if username.is_empty() || password.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "username and password are required",
        ));
    }
    let token = st.store.lock().login_username(username);
    Ok(json_value(StatusCode::OK, &json!({ "token": token })))
}

/// `GET /me` → `{"username"}` for a valid bearer token.
pub(super) fn me(st: &State, parts: &Parts) -> Reply {
    let username = st
        .store
        .lock()
        .viewer(parts)
        .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "unauthorized"))?;
    Ok(json_value(StatusCode::OK, &json!({ "username": username })))
}

/// Everything under `/api`; `rest` is the path after it, split on '/'.
pub(super) fn route(st: &State, parts: &Parts, rest: &[&str], body: &Bytes) -> Reply {
    let m = &parts.method;
    let store = &st.store;
    match rest {
        ["users"] => {
            allow(m, &[Method::POST])?;
            register(store, body)
        }
        ["users", "login"] => {
            allow(m, &[Method::POST])?;
            login_email(store, body)
        }
        ["user"] => {
            allow(m, &[Method::GET])?;
            let s = store.lock();
            let user = s.authed(parts)?;
            let doc = json!({ "user": s.user_json(&user) });
            drop(s);
            Ok(json_value(StatusCode::OK, &doc))
        }
        ["articles"] => {
            allow(m, &[Method::GET, Method::POST])?;
            if m == Method::POST {
                create_article(store, parts, body)
            } else {
                list_articles(store, parts)
            }
        }
        ["articles", "feed"] => {
            allow(m, &[Method::GET])?;
            // Following is not modelled, so a feed of followed authors is always empty.
            store.lock().authed(parts)?;
            Ok(json_value(
                StatusCode::OK,
                &json!({ "articles": [], "articlesCount": 0 }),
            ))
        }
        ["articles", slug] => {
            allow(m, &[Method::GET, Method::PUT, Method::DELETE])?;
            let slug = percent_decode(slug);
            match *m {
                Method::PUT => update_article(store, parts, &slug, body),
                Method::DELETE => delete_article(store, parts, &slug),
                _ => get_article(store, parts, &slug),
            }
        }
        ["articles", slug, "favorite"] => {
            allow(m, &[Method::POST, Method::DELETE])?;
            favorite(store, parts, &percent_decode(slug), m == Method::POST)
        }
        ["articles", slug, "comments"] => {
            allow(m, &[Method::GET, Method::POST])?;
            let slug = percent_decode(slug);
            if m == Method::POST {
                add_comment(store, parts, &slug, body)
            } else {
                list_comments(store, &slug)
            }
        }
        ["articles", slug, "comments", id] => {
            allow(m, &[Method::DELETE])?;
            delete_comment(store, parts, &percent_decode(slug), id)
        }
        ["tags"] => {
            allow(m, &[Method::GET])?;
            Ok(list_tags(store))
        }
        _ => Err(json_value(
            StatusCode::NOT_FOUND,
            &json!({ "error": "not found", "path": parts.uri.path() }),
        )),
    }
}

fn register(store: &Store, body: &Bytes) -> Reply {
    let doc = parse_body(body)?;
    let username = field(&doc, "user", "username");
    let email = field(&doc, "user", "email");
    let password = field(&doc, "user", "password");
    if username.is_empty() || email.is_empty() || password.is_empty() {
        return Err(unprocessable("username, email and password are required"));
    }
    let mut s = store.lock();
    if s.users.contains_key(username) {
        return Err(field_error("username", "has already been taken"));
    }
    if s.by_email.contains_key(email) {
        return Err(field_error("email", "has already been taken"));
    }
    s.insert_user(username.to_string(), email.to_string());
    let out = json!({ "user": s.user_json(username) });
    drop(s);
    Ok(json_value(StatusCode::CREATED, &out))
}

fn login_email(store: &Store, body: &Bytes) -> Reply {
    let doc = parse_body(body)?;
    let email = field(&doc, "user", "email");
    let password = field(&doc, "user", "password");
    if email.is_empty() || password.is_empty() {
        return Err(unprocessable("email and password are required"));
    }
    let mut s = store.lock();
    let username = s.login_email(email);
    let out = json!({ "user": s.user_json(&username) });
    drop(s);
    Ok(json_value(StatusCode::OK, &out))
}

fn list_articles(store: &Store, parts: &Parts) -> Reply {
    let mut limit = DEFAULT_LIMIT;
    let mut offset = 0usize;
    let (mut author, mut tag, mut favorited) = (None, None, None);
    let query = parts.uri.query().unwrap_or("");
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "limit" => limit = v.parse().unwrap_or(DEFAULT_LIMIT),
            "offset" => offset = v.parse().unwrap_or(0),
            "author" if !v.is_empty() => author = Some(v.into_owned()),
            "tag" if !v.is_empty() => tag = Some(v.into_owned()),
            "favorited" if !v.is_empty() => favorited = Some(v.into_owned()),
            _ => {}
        }
    }
    let limit = limit.min(MAX_LIMIT);
    let s = store.lock();
    let viewer = s.viewer(parts);
    let viewer = viewer.as_deref();
    let newest_first = s.articles.values().rev();
    let (articles, count): (Vec<ArticleView<'_>>, usize) =
        if author.is_none() && tag.is_none() && favorited.is_none() {
            let page = newest_first
                .skip(offset)
                .take(limit)
                .map(|a| s.article_view(a, viewer))
                .collect();
            (page, s.articles.len())
        } else {
            let mut page = Vec::new();
            let mut count = 0;
            for a in newest_first {
                let keep = author.as_ref().is_none_or(|u| a.author == *u)
                    && tag.as_ref().is_none_or(|t| a.tags.contains(t))
                    && favorited
                        .as_ref()
                        .is_none_or(|u| a.favorited_by.contains(u));
                if !keep {
                    continue;
                }
                if count >= offset && page.len() < limit {
                    page.push(s.article_view(a, viewer));
                }
                count += 1;
            }
            (page, count)
        };
    // Serialised straight from the store, under the lock, to skip an intermediate copy.
    Ok(json_value(
        StatusCode::OK,
        &ArticleList {
            articles,
            articles_count: count,
        },
    ))
}

fn create_article(store: &Store, parts: &Parts, body: &Bytes) -> Reply {
    // Parse outside the lock; the result is only inspected after the auth check so an
    // anonymous request gets 401 whatever its body.
    let parsed = parse_body(body);
    let mut s = store.lock();
    let author = s.authed(parts)?;
    let doc = parsed?;
    let title = field(&doc, "article", "title");
    if title.trim().is_empty() {
        return Err(unprocessable("title can't be blank"));
    }
    let mut tags: Vec<String> = Vec::new();
    if let Some(list) = doc
        .get("article")
        .and_then(|a| a.get("tagList"))
        .and_then(Value::as_array)
    {
        for tag in list.iter().filter_map(Value::as_str) {
            let tag = tag.trim();
            if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_string());
            }
        }
    }
    let now = iso8601(now_ms());
    let article = Article {
        slug: String::new(),
        title: title.to_string(),
        description: field(&doc, "article", "description").to_string(),
        body: field(&doc, "article", "body").to_string(),
        tags,
        created_at: now.clone(),
        updated_at: now,
        author: author.clone(),
        favorited_by: HashSet::new(),
        comments: VecDeque::new(),
    };
    let id = s.insert_article(article);
    s.article_response(StatusCode::CREATED, id, Some(&author))
}

fn get_article(store: &Store, parts: &Parts, slug: &str) -> Reply {
    let s = store.lock();
    let id = s.article_id(slug)?;
    let viewer = s.viewer(parts);
    s.article_response(StatusCode::OK, id, viewer.as_deref())
}

fn update_article(store: &Store, parts: &Parts, slug: &str, body: &Bytes) -> Reply {
    let parsed = parse_body(body);
    let mut s = store.lock();
    let user = s.authed(parts)?;
    let id = s.article_id(slug)?;
    let doc = parsed?;
    let changes = doc.get("article");
    let text = |key: &str| changes.and_then(|c| c.get(key)).and_then(Value::as_str);
    if text("title").is_some_and(|t| t.trim().is_empty()) {
        return Err(unprocessable("title can't be blank"));
    }
    let article = s.articles.get_mut(&id).ok_or_else(article_not_found)?;
    if article.author != user {
        return Err(forbidden());
    }
    // The slug deliberately stays put on a title change: other virtual users may hold it.
    if let Some(title) = text("title") {
        article.title = title.to_string();
    }
    if let Some(description) = text("description") {
        article.description = description.to_string();
    }
    if let Some(body) = text("body") {
        article.body = body.to_string();
    }
    article.updated_at = iso8601(now_ms());
    s.article_response(StatusCode::OK, id, Some(&user))
}

fn delete_article(store: &Store, parts: &Parts, slug: &str) -> Reply {
    let mut s = store.lock();
    let user = s.authed(parts)?;
    let id = s.article_id(slug)?;
    if s.articles.get(&id).is_some_and(|a| a.author != user) {
        return Err(forbidden());
    }
    s.remove_article(id);
    drop(s);
    Ok(json_value(StatusCode::OK, &json!({})))
}

fn favorite(store: &Store, parts: &Parts, slug: &str, on: bool) -> Reply {
    let mut s = store.lock();
    let user = s.authed(parts)?;
    let id = s.article_id(slug)?;
    let article = s.articles.get_mut(&id).ok_or_else(article_not_found)?;
    if on {
        article.favorited_by.insert(user.clone());
    } else {
        article.favorited_by.remove(&user);
    }
    s.article_response(StatusCode::OK, id, Some(&user))
}

fn add_comment(store: &Store, parts: &Parts, slug: &str, body: &Bytes) -> Reply {
    let parsed = parse_body(body);
    let mut s = store.lock();
    let user = s.authed(parts)?;
    let id = s.article_id(slug)?;
    let doc = parsed?;
    let text = field(&doc, "comment", "body");
    if text.trim().is_empty() {
        return Err(unprocessable("body can't be blank"));
    }
    let comment = Comment {
        id: s.next_id(),
        created_at: iso8601(now_ms()),
        body: text.to_string(),
        author: user,
    };
    let article = s.articles.get_mut(&id).ok_or_else(article_not_found)?;
    article.comments.push_back(comment);
    if article.comments.len() > MAX_COMMENTS_PER_ARTICLE {
        article.comments.pop_front();
    }
    let comment = s
        .articles
        .get(&id)
        .and_then(|a| a.comments.back())
        .ok_or_else(article_not_found)?;
    Ok(json_value(
        StatusCode::CREATED,
        &CommentEnvelope {
            comment: s.comment_view(comment),
        },
    ))
}

fn list_comments(store: &Store, slug: &str) -> Reply {
    let s = store.lock();
    let id = s.article_id(slug)?;
    let comments: Vec<CommentView<'_>> = s
        .articles
        .get(&id)
        .map(|a| a.comments.iter().map(|c| s.comment_view(c)).collect())
        .unwrap_or_default();
    Ok(json_value(StatusCode::OK, &CommentList { comments }))
}

fn delete_comment(store: &Store, parts: &Parts, slug: &str, comment_id: &str) -> Reply {
    let mut s = store.lock();
    let user = s.authed(parts)?;
    let id = s.article_id(slug)?;
    let comment_id: u64 = comment_id.parse().map_err(|_| comment_not_found())?;
    let article = s.articles.get_mut(&id).ok_or_else(article_not_found)?;
    let pos = article
        .comments
        .iter()
        .position(|c| c.id == comment_id)
        .ok_or_else(comment_not_found)?;
    if article.comments[pos].author != user {
        return Err(forbidden());
    }
    article.comments.remove(pos);
    drop(s);
    Ok(json_value(StatusCode::OK, &json!({})))
}

fn list_tags(store: &Store) -> Resp {
    let s = store.lock();
    let mut tags: Vec<(&String, usize)> = s.tag_counts.iter().map(|(t, n)| (t, *n)).collect();
    tags.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let names: Vec<&str> = tags
        .iter()
        .take(MAX_TAGS_LISTED)
        .map(|(t, _)| t.as_str())
        .collect();
    json_value(StatusCode::OK, &json!({ "tags": names }))
}

/// The token from `Authorization: Token <t>` (Conduit) or `Bearer <t>`.
fn auth_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let known = scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer");
    known.then(|| token.trim())
}

fn parse_body(body: &Bytes) -> Result<Value, Resp> {
    serde_json::from_slice(body).map_err(|e| unprocessable(&format!("invalid JSON: {e}")))
}

/// `doc[outer][key]` as a string, "" when missing or not a string.
fn field<'a>(doc: &'a Value, outer: &str, key: &str) -> &'a str {
    doc.get(outer)
        .and_then(|o| o.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn unprocessable(message: &str) -> Resp {
    field_error("body", message)
}

fn field_error(field: &str, message: &str) -> Resp {
    json_value(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({ "errors": { field: [message] } }),
    )
}

fn unauthorized() -> Resp {
    json_value(
        StatusCode::UNAUTHORIZED,
        &json!({ "errors": { "body": ["unauthorized"] } }),
    )
}

fn forbidden() -> Resp {
    json_value(
        StatusCode::FORBIDDEN,
        &json!({ "errors": { "body": ["forbidden"] } }),
    )
}

fn article_not_found() -> Resp {
    json_value(
        StatusCode::NOT_FOUND,
        &json!({ "errors": { "article": ["not found"] } }),
    )
}

fn comment_not_found() -> Resp {
    json_value(
        StatusCode::NOT_FOUND,
        &json!({ "errors": { "comment": ["not found"] } }),
    )
}

/// Lowercase ASCII words joined by '-'; the caller appends a unique number.
fn slugify(title: &str) -> String {
    let mut slug = String::with_capacity(title.len().min(64));
    for c in title.chars() {
        if slug.len() >= 64 {
            break;
        }
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() {
        slug.push_str("article");
    }
    slug
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// "2026-11-27T09:00:00.000Z" from Unix milliseconds, without a date crate.
fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// algorithm, which works in 400-year eras so leap rules need no special cases.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_795_770_000_000), "2026-11-27T09:00:00.000Z");
    }

    #[test]
    fn slugs() {
        assert_eq!(
            slugify("How to train your dragon!"),
            "how-to-train-your-dragon"
        );
        assert_eq!(slugify("  ¿¡ "), "article");
    }
}
