"""The black-box recorder: capture a window of topics, desensitise it, replay it, diff a build against it."""
