"""Backends: each implements the datashield package DSDriver/DSConnection/DSResult."""
