"""The pull-through cache: cache rules, their upstreams, single-flight fills."""
