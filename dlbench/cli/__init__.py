"""Thin command-line front ends; bin/dlb_* call their main()."""
