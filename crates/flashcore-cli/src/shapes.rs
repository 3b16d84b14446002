//! bench/shapes.toml: the shape matrix shared by validate, bench and bench/peers.py.

use flashcore::{AttnOptions, DType, Mask, TensorDesc};
use serde::Deserialize;

static SHAPES_TOML: &str = include_str!("../../../bench/shapes.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    pub name: String,
    pub suites: Vec<String>,
    pub b: usize,
    pub h: usize,
    pub hkv: Option<usize>,
    pub sq: usize,
    pub sk: Option<usize>,
    pub d: usize,
    pub dtype: DType,
    pub mask: String,
    #[serde(default)]
    pub layout: Option<String>,
}

#[derive(Deserialize)]
struct File {
    shapes: Vec<Shape>,
    /// The backward rows (mode "bwd"), a section of their own after the forward rows.
    #[serde(default)]
    backward: Vec<Shape>,
}

fn file() -> File {
    toml::from_str(SHAPES_TOML).expect("bench/shapes.toml parses (checked by a test)")
}

impl Shape {
    pub fn hkv(&self) -> usize {
        self.hkv.unwrap_or(self.h)
    }
    pub fn sk(&self) -> usize {
        self.sk.unwrap_or(self.sq)
    }
    pub fn mask(&self) -> Mask {
        self.mask.parse().expect("shapes.toml: bad mask (checked by a test)")
    }
    pub fn bhsd(&self) -> bool {
        self.layout.as_deref() == Some("bhsd")
    }
    pub fn descs(&self) -> (TensorDesc, TensorDesc) {
        let mk = if self.bhsd() { TensorDesc::contiguous_bhsd } else { TensorDesc::contiguous_bshd };
        (mk(self.b, self.sq, self.h, self.d, self.dtype), mk(self.b, self.sk(), self.hkv(), self.d, self.dtype))
    }
    pub fn options(&self) -> AttnOptions {
        AttnOptions { mask: self.mask(), scale: None, return_lse: true, ..Default::default() }
    }
    pub fn label(&self) -> String {
        let hkv = if self.hkv() != self.h { format!("/{}", self.hkv()) } else { String::new() };
        let sk = if self.sk() != self.sq { format!("x{}", self.sk()) } else { String::new() };
        format!(
            "B{} H{}{hkv} S{}{sk} D{} {} {}{}",
            self.b,
            self.h,
            self.sq,
            self.d,
            self.dtype.name(),
            self.mask().name(),
            if self.bhsd() { " bhsd" } else { "" }
        )
    }
}

pub fn all() -> Vec<Shape> {
    file().shapes
}

pub fn suite(names: &[&str]) -> Vec<Shape> {
    all().into_iter().filter(|s| s.suites.iter().any(|x| names.contains(&x.as_str()))).collect()
}

/// Every backward row.
pub fn backward_all() -> Vec<Shape> {
    file().backward
}

pub fn backward_suite(names: &[&str]) -> Vec<Shape> {
    backward_all().into_iter().filter(|s| s.suites.iter().any(|x| names.contains(&x.as_str()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse_and_are_valid() {
        let all = all();
        assert!(all.len() > 40);
        for s in &all {
            let _ = s.mask();
            assert!(s.h % s.hkv() == 0, "{}", s.name);
            assert!(flashcore::plan::tiles::supported_head_dim(s.d), "{}", s.name);
            let (q, k) = s.descs();
            let o = q.like();
            flashcore::api::check::check(&q, &k, &k, &o, &s.options()).unwrap();
        }
        let names: std::collections::HashSet<_> = all.iter().map(|s| &s.name).collect();
        assert_eq!(names.len(), all.len(), "shape names are unique");
        assert_eq!(suite(&["seed"]).len(), 6);
    }

    #[test]
    fn backward_shapes_parse_and_are_valid() {
        let bwd = backward_all();
        assert!(bwd.len() >= 12);
        for s in &bwd {
            assert!(flashcore::plan::backward::supported_bwd_head_dim(s.d), "{}", s.name);
            let (q, k) = s.descs();
            let opts = flashcore::BwdOptions { mask: s.mask(), ..Default::default() };
            flashcore::api::check::check_backward(&q, &k, &k, &q.like(), &q, &q.like(), &k.like(), &k.like(), &opts)
                .unwrap();
        }
        let mut names: std::collections::HashSet<_> = all().into_iter().map(|s| s.name).collect();
        for s in &bwd {
            assert!(names.insert(s.name.clone()), "{}: names are unique across both sections", s.name);
        }
        assert!(!backward_suite(&["quick"]).is_empty() && !backward_suite(&["bwd"]).is_empty());
    }
}
