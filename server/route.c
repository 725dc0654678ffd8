/* route.c - placeholder */
typedef int llmgate_placeholder_route;
