/* route_test.c - routing groups: tiers in order, tried keys left out, weights, fallbacks. */
#include <string.h>

#include "server/policy/route.h"
#include "t.h"

int main(void)
{
    {
        /* Routing: tier 1 keys round-robin, then tier 2, then the fallback model. */
        cfg_key_t k1[2] = {{.name = "a1"}, {.name = "a2"}}, k2[1] = {{.name = "b1"}},
                  k3[1] = {{.name = "c1"}};
        cfg_provider_t ps[3] = {{.name = "pa", .keys = k1, .keys_count = 2},
                                {.name = "pb", .keys = k2, .keys_count = 1},
                                {.name = "pc", .keys = k3, .keys_count = 1}};
        cfg_deployment_t d1[2] = {{.provider_ref = &ps[0], .weight = 1, .priority = 1},
                                  {.provider_ref = &ps[1], .weight = 1, .priority = 2}};
        cfg_deployment_t d2[1] = {{.provider_ref = &ps[2], .weight = 1, .priority = 1}};
        cfg_model_t models[2];
        cfg_model_t *fb = &models[1];
        cfg_t cfg = {.providers = ps, .providers_count = 3, .models = models, .models_count = 2};
        route_state_t st;
        route_tried_t tried = {0};
        route_cand_t c[8];
        unsigned n;

        memset(models, 0, sizeof(models));
        models[0] = (cfg_model_t){.name = "m",
                                  .deployments = d1,
                                  .deployments_count = 2,
                                  .fallbacks_count = 1,
                                  .fallback_refs = &fb};
        models[1] = (cfg_model_t){.name = "f", .deployments = d2, .deployments_count = 1};
        (void)cfg;
        route_state_init(&st, 1);
        n = route_group(&st, &models[0], &tried, NULL, 0, c, 8);
        T_OK(n == 2 && c[0].dep == &d1[0] && c[1].dep == &d1[0] && c[0].key != c[1].key,
             "group 0: both keys of tier 1");
        n = route_group(&st, &models[0], &tried, NULL, 1, c, 8);
        T_OK(n == 1 && c[0].key == &k2[0] && c[0].model == &models[0], "group 1: tier 2");
        n = route_group(&st, &models[0], &tried, NULL, 2, c, 8);
        T_OK(n == 1 && c[0].key == &k3[0] && c[0].model == &models[1],
             "group 2: the fallback model");
        T_EQ_INT(route_group(&st, &models[0], &tried, NULL, 3, c, 8), 0, "then nothing");
        route_tried_add(&tried, &k1[0]);
        route_tried_add(&tried, &k1[1]);
        n = route_group(&st, &models[0], &tried, NULL, 0, c, 8);
        T_OK(n == 1 && c[0].key == &k2[0], "tried keys left out, empty tier skipped");
        route_tried_add(&tried, &k1[0]);
        T_EQ_INT(tried.n, 2, "a key is added to tried once");
        T_EQ_INT(route_group(&st, &models[0], &tried, NULL, 0, c, 1), 1, "max respected");
        {
            /* Weighted order: a deployment of weight 3 comes first about 3 times in 4. */
            cfg_deployment_t dw[2] = {{.provider_ref = &ps[1], .weight = 3, .priority = 1},
                                      {.provider_ref = &ps[2], .weight = 1, .priority = 1}};
            cfg_model_t mw = {.name = "w", .deployments = dw, .deployments_count = 2};
            route_tried_t none = {0};
            int first_heavy = 0;
            for (int i = 0; i < 4000; i++) {
                route_group(&st, &mw, &none, NULL, 0, c, 8);
                first_heavy += c[0].dep == &dw[0];
            }
            T_OK(first_heavy > 2800 && first_heavy < 3200,
                 "weight 3:1 puts the heavy deployment first %d of 4000 times", first_heavy);
        }
        {
            /* Two deployments of one provider in a tier share its keys: each key is a
             * candidate once, with the deployment drawn first, whatever the order. */
            cfg_deployment_t dd[3] = {{.provider_ref = &ps[0], .weight = 1, .priority = 1},
                                      {.provider_ref = &ps[2], .weight = 1, .priority = 1},
                                      {.provider_ref = &ps[0], .weight = 1, .priority = 1}};
            cfg_model_t md = {.name = "d", .deployments = dd, .deployments_count = 3};
            route_tried_t none = {0}, one = {0};
            int bad = 0, first_dd2 = 0;
            route_tried_add(&one, &k1[1]);
            for (int i = 0; i < 2000; i++) {
                n = route_group(&st, &md, &none, NULL, 0, c, 8);
                int k10 = 0, k11 = 0, k30 = 0;
                for (unsigned j = 0; j < n; j++) {
                    k10 += c[j].key == &k1[0];
                    k11 += c[j].key == &k1[1];
                    k30 += c[j].key == &k3[0];
                    bad += (c[j].key == &k1[0] || c[j].key == &k1[1]) && c[j].dep == &dd[1];
                }
                bad += n != 3 || k10 != 1 || k11 != 1 || k30 != 1;
                for (unsigned j = 0; j < n; j++)
                    if (c[j].key == &k1[0])
                        first_dd2 += c[j].dep == &dd[2];
                n = route_group(&st, &md, &one, NULL, 0, c, 8);
                bad += n != 2 || c[0].key == &k1[1] || c[1].key == &k1[1];
            }
            T_EQ_INT(bad, 0, "a provider in two deployments of a tier: its keys once each");
            T_OK(first_dd2 > 800 && first_dd2 < 1200,
                 "with either of its deployments, as drawn (%d of 2000 the second)", first_dd2);
        }
    }
    return t_done();
}
