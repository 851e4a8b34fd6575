"""batchdrop's local stack: the whole control plane on an embedded AWS emulator (moto) on loopback.

Not part of the Lambda layer. `template` reads `template.yaml`, `emulator`
starts moto and creates the stack's resources from the template's own
properties, and `bridges` holds each place where moto does not behave like
AWS and what stands in for it.
"""
