"""Small helpers shared by horde's modules, under Locust's ``locust.util`` names."""
