#!/usr/bin/env python3
"""Prints tensor NAME of a safetensors FILE as a flat list (cfl.safetensors): readmodel.py FILE NAME"""
import sys

from cfl import safetensors

print([float(v) for v in safetensors.load_file(sys.argv[1])[sys.argv[2]].reshape(-1)])
