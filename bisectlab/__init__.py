"""bisectlab: kernel-style bisection of intermittent, hardware-destroying bugs."""
__version__ = "0.1.0"
