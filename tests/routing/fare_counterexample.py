"""The fare search counterexample of issue 13 item 12 as GTFS text (for ``gtfs_text.write_gtfs``).

::

    X --A--> Y   08:00 -> 08:10  and  08:20 -> 08:30      (2.00 EUR a ride)
    Y --B--> Z   09:15 -> 09:30                            (2.00 EUR a ride)
    fare_transfer_rules: ride -> ride free within 60 minutes, departure to departure

Leaving X before 08:00 both A trips reach the only B trip (arrival 09:30); via
08:00 it costs 4.00 EUR (75 minutes departure to departure), via 08:20 2.00
EUR. No calendar: ``write_gtfs`` adds service ``WK`` running every day of 2025.
"""

COUNTEREXAMPLE = {
    "stops.txt": """
        stop_id,stop_name,stop_lat,stop_lon
        X,Ex,52.5000,13.3000
        Y,Why,52.5000,13.3300
        Z,Zed,52.5000,13.3600
    """,
    "routes.txt": """
        route_id,route_short_name,route_type,network_id
        A,A,3,N
        B,B,3,N
    """,
    "trips.txt": """
        route_id,service_id,trip_id
        A,WK,A1
        A,WK,A2
        B,WK,B1
    """,
    "stop_times.txt": """
        trip_id,arrival_time,departure_time,stop_id,stop_sequence
        A1,08:00:00,08:00:00,X,1
        A1,08:10:00,08:10:00,Y,2
        A2,08:20:00,08:20:00,X,1
        A2,08:30:00,08:30:00,Y,2
        B1,09:15:00,09:15:00,Y,1
        B1,09:30:00,09:30:00,Z,2
    """,
    "fare_products.txt": """
        fare_product_id,fare_product_name,amount,currency
        RIDE,Single ride,2.00,EUR
        FREE,Free transfer,0.00,EUR
    """,
    "fare_leg_rules.txt": """
        leg_group_id,network_id,fare_product_id
        ride,N,RIDE
    """,
    "fare_transfer_rules.txt": """
        from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,fare_transfer_type,fare_product_id
        ride,ride,-1,3600,1,0,FREE
    """,
}
