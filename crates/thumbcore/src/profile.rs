//! Renditions and profiles: a thumbnail is a set of renditions (`SIZE:FORMAT[:QUALITY]`)
//! made from one decode, and a profile names a set.

use std::collections::BTreeMap;

use crate::format::ImageFormat;
use crate::output::Output;

/// One member of a set: fit inside `width`×`height` (aspect kept, never upscaled), written
/// as `output` says. Written `SIZE:FORMAT[:QUALITY]`, SIZE being `N` (an N×N box) or
/// `WxH`.
///
/// ```
/// use thumbcore::{ImageFormat, Rendition};
///
/// let r: Rendition = "160:webp".parse().unwrap();
/// assert_eq!((r.width, r.height, r.output.format), (160, 160, ImageFormat::WebP));
/// assert_eq!(r.size(), 160);
/// assert_eq!("330x200:jpeg:70".parse::<Rendition>().unwrap().to_string(), "330x200:jpeg:70");
/// assert!("0:png".parse::<Rendition>().is_err());
/// assert!("160".parse::<Rendition>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendition {
    /// The box's width.
    pub width: u32,
    /// The box's height.
    pub height: u32,
    /// Format and quality.
    pub output: Output,
}

impl Rendition {
    /// The largest box side allowed.
    pub const MAX_SIDE: u32 = 4096;

    /// The box's larger side: what `size` means in URLs and results.
    pub fn size(&self) -> u32 {
        self.width.max(self.height)
    }
}

impl std::fmt::Display for Rendition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.width == self.height {
            write!(f, "{}:{}", self.width, self.output)
        } else {
            write!(f, "{}x{}:{}", self.width, self.height, self.output)
        }
    }
}

impl std::str::FromStr for Rendition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let Some((size, output)) = s.split_once(':') else {
            return Err(format!("{s:?}: write SIZE:FORMAT[:QUALITY], e.g. 160:webp"));
        };
        let side = |v: &str| {
            v.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=Self::MAX_SIDE).contains(n))
                .ok_or_else(|| {
                    format!(
                        "{s:?}: the size must be 1 to {} (or WIDTHxHEIGHT)",
                        Self::MAX_SIDE
                    )
                })
        };
        let (width, height) = match size.split_once(['x', 'X']) {
            Some((w, h)) => (side(w)?, side(h)?),
            None => {
                let n = side(size)?;
                (n, n)
            }
        };
        let output = output.parse::<Output>()?;
        Ok(Rendition {
            width,
            height,
            output,
        })
    }
}

/// A named set of renditions, in the order they were configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `default` or a configured name.
    pub name: String,
    /// What a job makes: never empty, never only AVIF, no format twice at one size.
    pub renditions: Vec<Rendition>,
}

impl Profile {
    /// The profile whose renditions are `list` (`80:webp,160:webp,330:png`), checked:
    /// at least one, none repeated (same size and format).
    pub fn parse(name: &str, list: &str) -> Result<Profile, String> {
        let renditions = list
            .split(',')
            .filter(|r| !r.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Rendition>, String>>()
            .map_err(|e| format!("profile {name:?}: {e}"))?;
        Profile::new(name, renditions)
    }

    /// The profile `name` of `renditions`, checked as [`parse`](Self::parse) does; the
    /// name is 1–64 of `a-z 0-9 _ -`.
    pub fn new(name: &str, renditions: Vec<Rendition>) -> Result<Profile, String> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "profile name {name:?}: use 1 to 64 of a-z, 0-9, _ and -"
            ));
        }
        if renditions.is_empty() {
            return Err(format!("profile {name:?} has no renditions"));
        }
        if renditions
            .iter()
            .all(|r| r.output.format == ImageFormat::Avif)
        {
            return Err(format!(
                "profile {name:?} has only AVIF renditions: add a PNG, JPEG or WebP one to serve while they are made"
            ));
        }
        for (i, r) in renditions.iter().enumerate() {
            if renditions[..i]
                .iter()
                .any(|o| o.size() == r.size() && o.output.format == r.output.format)
            {
                return Err(format!(
                    "profile {name:?} lists {} twice at size {}",
                    r.output.format.name(),
                    r.size()
                ));
            }
        }
        Ok(Profile {
            name: name.to_owned(),
            renditions,
        })
    }

    /// The rendition a URL without `size` or `format` serves: the largest one in the format
    /// of the profile's last rendition that is not AVIF (AVIF ones are made after the job).
    pub fn main(&self) -> usize {
        let format = self
            .renditions
            .iter()
            .rev()
            .map(|r| r.output.format)
            .find(|&f| f != ImageFormat::Avif)
            .expect("a profile has a rendition that is not AVIF");
        let mut best = self.renditions.len() - 1;
        for (i, r) in self.renditions.iter().enumerate() {
            if r.output.format == format && r.size() > self.renditions[best].size() {
                best = i;
            }
        }
        best
    }

    /// The renditions' list as it is configured (`80:webp,330:png`).
    pub fn list(&self) -> String {
        self.renditions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The profiles a service knows, by name, and which one a create without `profile` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profiles {
    by_name: BTreeMap<String, Profile>,
    default: String,
    /// Per environment (`development`, `production`): its own default, where it has one.
    by_environment: BTreeMap<String, String>,
}

impl Profiles {
    /// The built-in profile's name.
    pub const DEFAULT: &'static str = "default";

    /// Just `default`, made of `default`'s renditions (the service's one thumbnail: the
    /// seeds' `330:png` unless configured otherwise).
    pub fn new(default: Vec<Rendition>) -> Result<Profiles, String> {
        let profile = Profile::new(Self::DEFAULT, default)?;
        Ok(Profiles {
            by_name: BTreeMap::from([(Self::DEFAULT.to_owned(), profile)]),
            default: Self::DEFAULT.to_owned(),
            by_environment: BTreeMap::new(),
        })
    }

    /// Adds (or redefines) a profile.
    pub fn insert(&mut self, profile: Profile) {
        self.by_name.insert(profile.name.clone(), profile);
    }

    /// Adds the profiles of `spec`, written `NAME=R,R,…;NAME=R,…` (as `THUMBD_PROFILES`
    /// writes them).
    ///
    /// ```
    /// use thumbcore::{Output, Profiles, Rendition};
    ///
    /// let mut profiles = Profiles::new(vec!["330:png".parse().unwrap()]).unwrap();
    /// profiles.insert_all("web=80:webp,160:webp,330:png; icons=64:png").unwrap();
    /// assert_eq!(profiles.get("web").unwrap().renditions.len(), 3);
    /// assert_eq!(profiles.get("icons").unwrap().list(), "64:png");
    /// assert!(profiles.insert_all("bad").is_err());
    /// ```
    pub fn insert_all(&mut self, spec: &str) -> Result<(), String> {
        for part in spec.split(';').filter(|p| !p.trim().is_empty()) {
            let Some((name, list)) = part.split_once('=') else {
                return Err(format!("{part:?}: write NAME=SIZE:FORMAT,…"));
            };
            self.insert(Profile::parse(name.trim(), list)?);
        }
        Ok(())
    }

    /// Makes `name` the profile of creates that name none; it must exist.
    pub fn set_default(&mut self, name: &str) -> Result<(), String> {
        self.check_known(name)?;
        name.clone_into(&mut self.default);
        Ok(())
    }

    /// Makes `name` the profile of creates in `environment` that name none (over
    /// [`set_default`](Self::set_default)'s); it must exist.
    ///
    /// ```
    /// use thumbcore::Profiles;
    ///
    /// let mut profiles = Profiles::default();
    /// profiles.insert_all("web=80:webp,330:png").unwrap();
    /// profiles.set_default_for("production", "web").unwrap();
    /// assert_eq!(profiles.default_for("production").name, "web");
    /// assert_eq!(profiles.default_for("development").name, "default");
    /// ```
    pub fn set_default_for(&mut self, environment: &str, name: &str) -> Result<(), String> {
        self.check_known(name)?;
        self.by_environment
            .insert(environment.to_owned(), name.to_owned());
        Ok(())
    }

    fn check_known(&self, name: &str) -> Result<(), String> {
        if self.by_name.contains_key(name) {
            return Ok(());
        }
        Err(format!(
            "default profile {name:?} is not configured: known are {}",
            self.names().join(", ")
        ))
    }

    /// The profile of creates in `environment` that name none.
    pub fn default_for(&self, environment: &str) -> &Profile {
        let name = self
            .by_environment
            .get(environment)
            .unwrap_or(&self.default);
        &self.by_name[name]
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.by_name.get(name)
    }

    /// Every name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }
}

impl Default for Profiles {
    /// `default` = `330:png`, the seeds' thumbnail.
    fn default() -> Self {
        Profiles::new(vec![Rendition {
            width: 330,
            height: 330,
            output: Output {
                format: ImageFormat::Png,
                quality: None,
            },
        }])
        .expect("330:png is a valid profile")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_rendition_is_the_largest_of_the_last_format() {
        let p = Profile::parse("web", "80:webp,330:webp,160:png,330:png,80:png").unwrap();
        assert_eq!(p.renditions[p.main()].to_string(), "330:png");
        let p = Profile::parse("one", "64:jpeg").unwrap();
        assert_eq!(p.main(), 0);
    }

    #[test]
    fn refuses_repeats_bad_names_and_formats_never_written() {
        assert!(Profile::parse("web", "80:webp,80:webp:lossless").is_err());
        assert!(Profile::parse("Web", "80:webp").is_err());
        assert!(Profile::parse("web", "").is_err());
        assert!(Profile::parse("web", "80:gif").is_err());
        assert_eq!(
            Profile::parse("web", "80:avif,80:avif:50,80:png").unwrap_err(),
            "profile \"web\" lists avif twice at size 80"
        );
        let only_avif = Profile::parse("web", "80:avif,160:avif").unwrap_err();
        assert!(only_avif.contains("only AVIF"), "{only_avif}");
        let mut p = Profiles::default();
        assert!(p.set_default("web").is_err());
        p.insert_all("web=80:webp").unwrap();
        p.set_default("web").unwrap();
        assert_eq!(p.default_for("production").name, "web");
    }
}
