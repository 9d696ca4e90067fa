// CI size of the randomized simulation: 2 parts (files run in parallel) x this many seeds.
export const CI_SEEDS_PER_PART = 150;
