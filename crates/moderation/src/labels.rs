//! What the classifier scores, and the thresholds that turn scores into labels.

/// A kind of harm the classifier scores, in the model's output order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// Insults and harassment aimed at someone.
    Insult,
    /// Threats of violence, stalking, doxxing.
    Threat,
    /// Telling someone to hurt or kill themselves.
    SelfHarm,
    /// Sexual content and unwanted sexual advances.
    Sexual,
    /// Attacks on people for the group they belong to.
    Hate,
}

/// Every label, in the model's output order.
pub const LABELS: [Label; 5] = [
    Label::Insult,
    Label::Threat,
    Label::SelfHarm,
    Label::Sexual,
    Label::Hate,
];

impl Label {
    /// The name used in the model's metadata, the API and room policies.
    pub fn name(self) -> &'static str {
        match self {
            Label::Insult => "insult",
            Label::Threat => "threat",
            Label::SelfHarm => "self_harm",
            Label::Sexual => "sexual",
            Label::Hate => "hate",
        }
    }

    pub fn from_name(name: &str) -> Option<Label> {
        LABELS.into_iter().find(|l| l.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A probability per label, each in [0, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scores(pub [f32; 5]);

impl Scores {
    pub fn get(&self, label: Label) -> f32 {
        self.0[label.index()]
    }

    pub fn iter(&self) -> impl Iterator<Item = (Label, f32)> + '_ {
        LABELS.into_iter().map(|l| (l, self.get(l)))
    }

    /// The labels whose score reaches its threshold.
    pub fn over(&self, thresholds: &Thresholds) -> Vec<Label> {
        self.iter()
            .filter(|&(l, p)| p >= thresholds.get(l))
            .map(|(l, _)| l)
            .collect()
    }
}

/// A threshold per label.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds(pub [f32; 5]);

impl Thresholds {
    pub fn get(&self, label: Label) -> f32 {
        self.0[label.index()]
    }

    pub fn set(&mut self, label: Label, threshold: f32) {
        self.0[label.index()] = threshold;
    }
}

impl Default for Thresholds {
    /// 0.5 for every label: the operating point the evaluation figures in
    /// models/toxicity/README.md are measured at.
    fn default() -> Thresholds {
        Thresholds([0.5; 5])
    }
}
