"""The station core: sessions, transactions, authorization, availability, settings, store and outbox.

Version-neutral: it knows neither OCPP nor pins. The protocol adapters translate
its events and commands; the safety loop decides what the hardware may do.
"""
