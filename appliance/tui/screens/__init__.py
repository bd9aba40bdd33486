"""Full screens: start, ceremony, views."""
