mod fake;
mod fake_strictness;
