"""Benchmarks: speed and memory targets, measured in one run and printed as ratios.

Run them with `make bench`. They are not tests: these machines are shared and
noisy, so figures vary from run to run; each benchmark measures what it
compares in the same run, interleaved, and reports medians (or the best of
several rounds where a throughput is the figure).
"""
