use chanx_core::topic;

#[derive(Default)]
struct NoPattern;

#[topic]
impl NoPattern {}

#[derive(Default)]
struct Adjacent;

#[topic(pattern = "{org}{project}")]
impl Adjacent {}

#[derive(Default)]
struct Unclosed;

#[topic(pattern = "discussion:{pk")]
impl Unclosed {}

#[derive(Default)]
struct Twice;

#[topic(pattern = "pair:{a}:{a}")]
impl Twice {}

#[derive(Default)]
struct NotIdent;

#[topic(pattern = "discussion:{p-k}")]
impl NotIdent {}

#[derive(Default)]
struct Unknown;

#[topic(pattern = "x:{id}", groups = ["a"])]
impl Unknown {}

fn main() {}
