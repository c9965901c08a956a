"""Renderers: each reads only the Recommendation model (recommendation.json), never the analysis."""
