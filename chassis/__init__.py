"""The microservice chassis: what every Chorus service needs and none owns.

It holds no domain logic and imports no service and not the gateway.
"""
