"""Fault injection and hostile input: killed processes, failing servers, odd input, direct writes."""
