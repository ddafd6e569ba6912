"""A shared-code module for the snippet test page."""


# --8<-- [start:double]
def double(x):
    return 2 * x
# --8<-- [end:double]
