"""The safety loop: IEC 61851 states, PWM, contactor, RCD, welding.

The only code that may close the contactor.
"""
