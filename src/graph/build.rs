//! Builds graphs forward through the shape rules.
